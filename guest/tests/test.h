/* A minimal test harness: each CHECK counts, failures print file:line and the condition. */
#ifndef BM_TEST_H
#define BM_TEST_H

extern int test_checks;
extern int test_failures;
extern const char *test_data_dir;

void test_fail(const char *file, int line, const char *what);

#define CHECK(cond)                                         \
    do {                                                    \
        test_checks++;                                      \
        if (!(cond))                                        \
            test_fail(__FILE__, __LINE__, #cond);           \
    } while (0)

/* Reads DATA_DIR/name with plat_read_file; returns 0 on success. */
int test_read(const char *name, unsigned char **data, unsigned long *size);

void test_config(void);
void test_out(void);
void test_math(void);
void test_sampler(void);
void test_tokenizer(void);
void test_model(void);
void test_bench(void);
void test_kernels(void);
void test_http(void);

#endif
