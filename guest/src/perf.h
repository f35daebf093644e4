/* Timing of generation repeats: [perf] lines, medians, the slowdown busy-wait. */
#ifndef BM_PERF_H
#define BM_PERF_H

#include <stdint.h>

struct gen_stats {
    uint32_t prompt_tokens;
    uint32_t tokens;            /* generated */
    uint32_t decode_tokens;     /* generated after the first */
    uint64_t prefill_cycles;    /* forward passes of the prompt */
    uint64_t first_token_cycles;/* start of prefill to the first token printed */
    uint64_t decode_cycles;     /* first token printed to the last token printed */
};

/* tokens per second, 0 when no time elapsed (never inf). */
double perf_tok_s(uint64_t tokens, uint64_t cycles, uint64_t tsc_hz);
double perf_ms(uint64_t cycles, uint64_t tsc_hz);
/* Spins until `cycles` TSC cycles have passed. */
void perf_busy_wait(uint64_t cycles);
/* Median of n values (sorted in place): mean of the two middle ones when n is even. */
double perf_median(double *values, uint32_t n);

void perf_print_repeat(uint32_t repeat, const struct gen_stats *s, uint64_t tsc_hz);
/* scratch: 2 * n doubles. */
void perf_print_summary(const struct gen_stats *s, uint32_t n, uint64_t tsc_hz, double *scratch);

#endif
