/* C unit tests of the portable core: run-tests DATA_DIR (fixtures from make_fixtures.py). */
#include <stdio.h>
#include <string.h>
#include "platform.h"
#include "test.h"

int test_checks;
int test_failures;
const char *test_data_dir = ".";

void test_fail(const char *file, int line, const char *what)
{
    test_failures++;
    fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
}

int test_read(const char *name, unsigned char **data, unsigned long *size)
{
    char path[512];
    const char *reason;
    size_t n;
    snprintf(path, sizeof path, "%s/%s", test_data_dir, name);
    int r = plat_read_file(path, data, &n, &reason);
    *size = n;
    return r;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        test_data_dir = argv[1];
    test_config();
    test_out();
    test_math();
    test_sampler();
    test_tokenizer();
    test_model();
    test_bench();
    test_kernels();
    test_http();
    printf("run-tests: %d checks, %d failed\n", test_checks, test_failures);
    return test_failures ? 1 : 0;
}
