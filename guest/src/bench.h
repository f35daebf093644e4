/* The module benchmarks of MARKERS.md: timed runs and self-checked results. */
#ifndef BM_BENCH_H
#define BM_BENCH_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_RESULT_MAX 72
#define BENCH_SCRATCH_BYTES 65536

struct bench_module {
    const char *name;
    uint32_t param;
    /* Computes the result text for param, using scratch (BENCH_SCRATCH_BYTES). */
    void (*run)(uint32_t param, void *scratch, char *result);
    const char *expected;
};

extern const struct bench_module bench_modules[];
extern const int bench_module_count;

/* Runs every module `runs` times and prints its [bench] line, then [bench] done.
 * Returns the number of failed modules, or -1 when scratch memory is missing. */
int bench_run_all(uint32_t runs, uint64_t tsc_hz);

#endif
