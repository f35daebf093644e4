#include <stdlib.h>
#include <string.h>
#include "bench.h"
#include "test.h"

/* The expected results, restated here from MARKERS.md and Python (hashlib, numpy). */
static const struct {
    const char *name;
    unsigned param;
    const char *result;
} want[] = {
    {"fibonacci", 24, "46368"},
    {"sum", 1000000, "500000500000"},
    {"primes", 10000, "1229"},
    {"sha256", 4096, "c8f5d0341d54d951a71b136e6e2afcb14d11ed8489a7ae126a8fee0df6ecf193"},
    {"matmul", 64, "-128"},
    {"fft", 256, "5-17"},
    {"quicksort", 10000, "2218422642"},
};

void test_bench(void)
{
    void *scratch = aligned_alloc(64, BENCH_SCRATCH_BYTES);
    char result[BENCH_RESULT_MAX];
    CHECK(bench_module_count == 7);
    for (int i = 0; i < bench_module_count && i < 7; i++) {
        const struct bench_module *m = &bench_modules[i];
        CHECK(strcmp(m->name, want[i].name) == 0);
        CHECK(m->param == want[i].param);
        memset(result, 0, sizeof result);
        m->run(m->param, scratch, result);
        CHECK(strcmp(result, want[i].result) == 0);
    }
    /* Other params give other answers: the modules compute rather than recall. */
    bench_modules[0].run(10, scratch, result);
    CHECK(strcmp(result, "55") == 0);
    bench_modules[2].run(100, scratch, result);
    CHECK(strcmp(result, "25") == 0);
    bench_modules[3].run(0, scratch, result);
    CHECK(strcmp(result, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    bench_modules[5].run(64, scratch, result);
    CHECK(strcmp(result, "5-17") == 0);
    free(scratch);
}
