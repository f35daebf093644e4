#include "bench.h"
#include "bmlib.h"
#include "fft.h"
#include "mathf.h"
#include "out.h"
#include "platform.h"
#include "sha256.h"

static uint64_t fib(uint32_t n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

static void run_fibonacci(uint32_t param, void *scratch, char *result)
{
    (void)scratch;
    result[fmt_u64(result, fib(param))] = 0;
}

static void run_sum(uint32_t param, void *scratch, char *result)
{
    (void)scratch;
    volatile uint64_t acc = 0;
    for (uint64_t i = 1; i <= param; i++)
        acc += i;
    result[fmt_u64(result, acc)] = 0;
}

static void run_primes(uint32_t param, void *scratch, char *result)
{
    uint8_t *composite = scratch;
    uint64_t count = 0;
    bm_memset(composite, 0, param);
    for (uint32_t i = 2; i < param; i++) {
        if (composite[i])
            continue;
        count++;
        for (uint64_t j = (uint64_t)i * i; j < param; j += i)
            composite[j] = 1;
    }
    result[fmt_u64(result, count)] = 0;
}

static void run_sha256(uint32_t param, void *scratch, char *result)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t *data = scratch;
    uint8_t digest[32];
    for (uint32_t i = 0; i < param; i++)
        data[i] = (uint8_t)(i & 0xff);
    sha256(data, param, digest);
    for (int i = 0; i < 32; i++) {
        result[2 * i] = hex[digest[i] >> 4];
        result[2 * i + 1] = hex[digest[i] & 15];
    }
    result[64] = 0;
}

static void run_matmul(uint32_t param, void *scratch, char *result)
{
    uint32_t n = param;
    float *a = scratch, *b = a + n * n, *c = b + n * n;
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < n; k++) {
            a[i * n + k] = (float)((int)((i + k) % 7) - 3);
            b[i * n + k] = (float)((int)((i * k) % 5) - 2);
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t j = 0; j < n; j++)
            c[i * n + j] = 0.0f;
        for (uint32_t k = 0; k < n; k++) {
            float aik = a[i * n + k];
            for (uint32_t j = 0; j < n; j++)
                c[i * n + j] += aik * b[k * n + j];
        }
    }
    double sum = 0.0;
    for (uint32_t i = 0; i < n * n; i++)
        sum += c[i];
    int64_t s = (int64_t)(sum < 0 ? sum - 0.5 : sum + 0.5);
    size_t len = 0;
    if (s < 0) {
        result[len++] = '-';
        s = -s;
    }
    len += fmt_u64(result + len, (uint64_t)s);
    result[len] = 0;
}

static void run_fft(uint32_t param, void *scratch, char *result)
{
    int n = (int)param;
    double *re = scratch, *im = re + n;
    for (int t = 0; t < n; t++) {
        re[t] = bm_cos(2.0 * BM_PI * 5 * t / n) + 0.5 * bm_sin(2.0 * BM_PI * 17 * t / n);
        im[t] = 0.0;
    }
    fft(re, im, n);
    int first = -1, second = -1;
    double m1 = -1.0, m2 = -1.0;
    for (int k = 0; k <= n / 2; k++) {
        double mag = re[k] * re[k] + im[k] * im[k];
        if (mag > m1) {
            second = first;
            m2 = m1;
            first = k;
            m1 = mag;
        } else if (mag > m2) {
            second = k;
            m2 = mag;
        }
    }
    int lo = first < second ? first : second, hi = first < second ? second : first;
    size_t len = fmt_u64(result, (uint64_t)lo);
    result[len++] = '-';
    len += fmt_u64(result + len, (uint64_t)hi);
    result[len] = 0;
}

static uint32_t partition(uint32_t *a, int64_t lo, int64_t hi, int64_t *split)
{
    uint32_t pivot = a[lo + (hi - lo) / 2];
    int64_t i = lo - 1, j = hi + 1;
    for (;;) {
        do i++; while (a[i] < pivot);
        do j--; while (a[j] > pivot);
        if (i >= j) {
            *split = j;
            return pivot;
        }
        uint32_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Hoare quicksort; recursing into the smaller side bounds the stack depth. */
static void quicksort(uint32_t *a, int64_t lo, int64_t hi)
{
    while (lo < hi) {
        int64_t p;
        partition(a, lo, hi, &p);
        if (p - lo < hi - p) {
            quicksort(a, lo, p);
            lo = p + 1;
        } else {
            quicksort(a, p + 1, hi);
            hi = p;
        }
    }
}

static void run_quicksort(uint32_t param, void *scratch, char *result)
{
    uint32_t *a = scratch;
    uint32_t x = 2463534242u;
    for (uint32_t i = 0; i < param; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        a[i] = x;
    }
    quicksort(a, 0, (int64_t)param - 1);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < param; i++)
        sum += a[i] * (i + 1);
    result[fmt_u64(result, sum)] = 0;
}

const struct bench_module bench_modules[] = {
    {"fibonacci", 24, run_fibonacci, "46368"},
    {"sum", 1000000, run_sum, "500000500000"},
    {"primes", 10000, run_primes, "1229"},
    {"sha256", 4096, run_sha256,
     "c8f5d0341d54d951a71b136e6e2afcb14d11ed8489a7ae126a8fee0df6ecf193"},
    {"matmul", 64, run_matmul, "-128"},
    {"fft", 256, run_fft, "5-17"},
    {"quicksort", 10000, run_quicksort, "2218422642"},
};
const int bench_module_count = sizeof bench_modules / sizeof bench_modules[0];

static uint64_t to_ns(uint64_t cycles, uint64_t tsc_hz)
{
    if (tsc_hz == 0)
        return 0;
    return (uint64_t)((double)cycles * 1e9 / (double)tsc_hz + 0.5);
}

#define BENCH_MAX_RUNS 1000

int bench_run_all(uint32_t runs, uint64_t tsc_hz)
{
    static uint64_t cycles[BENCH_MAX_RUNS];
    void *scratch = plat_alloc(BENCH_SCRATCH_BYTES);
    if (!scratch)
        return -1;
    if (runs > BENCH_MAX_RUNS)
        runs = BENCH_MAX_RUNS;
    if (runs == 0)
        runs = 1;
    int failed = 0;
    for (int m = 0; m < bench_module_count; m++) {
        const struct bench_module *mod = &bench_modules[m];
        /* A volatile copy keeps the compiler from folding a module at build time. */
        volatile uint32_t param = mod->param;
        char result[BENCH_RESULT_MAX];
        int ok = 1;
        for (uint32_t r = 0; r < runs; r++) {
            uint64_t start = plat_cycles();
            mod->run(param, scratch, result);
            cycles[r] = plat_cycles() - start;
            if (!bm_streq(result, mod->expected))
                ok = 0;
        }
        for (uint32_t i = 1; i < runs; i++) {
            uint64_t v = cycles[i];
            uint32_t j = i;
            for (; j > 0 && cycles[j - 1] > v; j--)
                cycles[j] = cycles[j - 1];
            cycles[j] = v;
        }
        uint64_t median = (cycles[(runs - 1) / 2] + cycles[runs / 2]) / 2;
        out_str("[bench]");
        out_kv_str("name", mod->name);
        out_kv_u64("param", mod->param);
        out_kv_u64("runs", runs);
        out_kv_u64("min_cycles", cycles[0]);
        out_kv_u64("median_cycles", median);
        out_kv_u64("max_cycles", cycles[runs - 1]);
        out_kv_u64("min_ns", to_ns(cycles[0], tsc_hz));
        out_kv_u64("median_ns", to_ns(median, tsc_hz));
        out_kv_u64("max_ns", to_ns(cycles[runs - 1], tsc_hz));
        out_kv_str("result", result);
        out_kv_u64("ok", (uint64_t)ok);
        out_end();
        if (!ok) {
            failed++;
            out_str("[error] where=bench file=- reason=bench_mismatch detail=\"");
            out_str(mod->name);
            out_str(" expected ");
            out_str(mod->expected);
            out_str("\"");
            out_end();
        }
    }
    plat_free(scratch, BENCH_SCRATCH_BYTES);
    out_str("[bench] done");
    out_kv_u64("modules", (uint64_t)bench_module_count);
    out_kv_u64("failed", (uint64_t)failed);
    out_end();
    return failed;
}
