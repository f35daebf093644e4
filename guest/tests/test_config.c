#include <string.h>
#include "config.h"
#include "test.h"

static int parse(struct config *cfg, const char *text, struct cfg_error *err)
{
    config_defaults(cfg);
    return config_parse(cfg, text, strlen(text), err);
}

void test_config(void)
{
    struct config cfg;
    struct cfg_error err;

    CHECK(parse(&cfg, "", &err) == 0);
    CHECK(strcmp(cfg.model, "model.bin") == 0 && cfg.steps == 64 && cfg.seed == 42);
    CHECK(cfg.repeats == 3 && cfg.bench == 1 && cfg.bench_runs == 5 && cfg.shutdown == 1);
    CHECK(cfg.topp > 0.899f && cfg.topp < 0.901f && cfg.kernel == KERNEL_AUTO);

    const char *text =
        "# comment\r\n"
        "\n"
        "  mode = repl   # trailing comment\r\n"
        "prompt=\"Once \\\"upon\\\" a \\\\ #time\"  # after quotes\n"
        "steps=7\n"
        "seed=18446744073709551615\n"
        "temperature=1e-05\n"
        "topp=0.5\n"
        "kernel=portable\n"
        "bench=0\n"
        "slowdown_pct=25.5\n"
        "model=\"my model.bin\"";
    CHECK(parse(&cfg, text, &err) == 0);
    CHECK(cfg.repl == 1);
    CHECK(strcmp(cfg.prompt, "Once \"upon\" a \\ #time") == 0);
    CHECK(cfg.steps == 7);
    CHECK(cfg.seed == 18446744073709551615ULL);
    CHECK(cfg.temperature > 0.9e-5f && cfg.temperature < 1.1e-5f);
    CHECK(cfg.topp == 0.5f && cfg.kernel == KERNEL_PORTABLE && cfg.bench == 0);
    CHECK(cfg.slowdown_pct == 25.5f);
    CHECK(strcmp(cfg.model, "my model.bin") == 0);

    CHECK(parse(&cfg, "kernel=avx2-128\n", &err) == 0 && cfg.kernel == KERNEL_AVX2_128);
    CHECK(strcmp(config_kernel_name(cfg.kernel), "avx2-128") == 0);
    CHECK(parse(&cfg, "kernel=avx2\n", &err) == 0 && cfg.kernel == KERNEL_AVX2);

    CHECK(parse(&cfg, "steps=3\nsize=4\n", &err) == -1);
    CHECK(strcmp(err.reason, "unknown_key") == 0);
    CHECK(strcmp(err.detail, "line 2: unknown key size") == 0);

    const char *bad_values[] = {
        "steps=0", "steps=-1", "steps=12x", "seed=18446744073709551616", "topp=1.01",
        "temperature=-0.5", "mode=batch", "bench=2", "repeats=", "kernel=AVX2", "kernel=avx2-256", "model=",
        "bench_runs=1001", "temperature=nan",
    };
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        CHECK(parse(&cfg, bad_values[i], &err) == -1);
        CHECK(strcmp(err.reason, "bad_value") == 0);
    }
    const char *syntax[] = {"steps", "=5", "prompt=\"open", "prompt=\"a\" b", "Steps=5"};
    for (size_t i = 0; i < sizeof syntax / sizeof syntax[0]; i++) {
        CHECK(parse(&cfg, syntax[i], &err) == -1);
        CHECK(strcmp(err.reason, "syntax") == 0);
    }
}
