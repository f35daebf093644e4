#include "perf.h"
#include "out.h"
#include "platform.h"

double perf_tok_s(uint64_t tokens, uint64_t cycles, uint64_t tsc_hz)
{
    if (cycles == 0 || tsc_hz == 0)
        return 0.0;
    return (double)tokens * (double)tsc_hz / (double)cycles;
}

double perf_ms(uint64_t cycles, uint64_t tsc_hz)
{
    if (tsc_hz == 0)
        return 0.0;
    return (double)cycles * 1000.0 / (double)tsc_hz;
}

void perf_busy_wait(uint64_t cycles)
{
    uint64_t start = plat_cycles();
    while (plat_cycles() - start < cycles)
        __asm__ volatile("pause");
}

double perf_median(double *v, uint32_t n)
{
    if (n == 0)
        return 0.0;
    for (uint32_t i = 1; i < n; i++) {
        double x = v[i];
        uint32_t j = i;
        for (; j > 0 && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    return (v[(n - 1) / 2] + v[n / 2]) / 2.0;
}

void perf_print_repeat(uint32_t repeat, const struct gen_stats *s, uint64_t tsc_hz)
{
    out_str("[perf]");
    out_kv_u64("repeat", repeat);
    out_kv_u64("prefill_tokens", s->prompt_tokens);
    out_kv_fixed("prefill_ms", perf_ms(s->prefill_cycles, tsc_hz), 3);
    out_kv_fixed("prefill_tok_s", perf_tok_s(s->prompt_tokens, s->prefill_cycles, tsc_hz), 3);
    out_kv_u64("decode_tokens", s->decode_tokens);
    out_kv_fixed("decode_ms", perf_ms(s->decode_cycles, tsc_hz), 3);
    out_kv_fixed("decode_tok_s", perf_tok_s(s->decode_tokens, s->decode_cycles, tsc_hz), 3);
    out_kv_fixed("first_token_ms", perf_ms(s->first_token_cycles, tsc_hz), 3);
    out_end();
}

void perf_print_summary(const struct gen_stats *s, uint32_t n, uint64_t tsc_hz, double *scratch)
{
    double *prefill = scratch, *decode = scratch + n;
    for (uint32_t i = 0; i < n; i++) {
        prefill[i] = perf_tok_s(s[i].prompt_tokens, s[i].prefill_cycles, tsc_hz);
        decode[i] = perf_tok_s(s[i].decode_tokens, s[i].decode_cycles, tsc_hz);
    }
    double prefill_median = perf_median(prefill, n);
    double decode_median = perf_median(decode, n);   /* sorts: min first, max last */
    out_str("[perf] summary");
    out_kv_u64("repeats", n);
    out_kv_fixed("prefill_tok_s_median", prefill_median, 3);
    out_kv_fixed("decode_tok_s_median", decode_median, 3);
    out_kv_fixed("decode_tok_s_min", n ? decode[0] : 0.0, 3);
    out_kv_fixed("decode_tok_s_max", n ? decode[n - 1] : 0.0, 3);
    out_end();
}
