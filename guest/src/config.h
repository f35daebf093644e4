/* run.cfg: key=value lines, # comments, optional double quotes (see MARKERS.md). */
#ifndef BM_CONFIG_H
#define BM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_NAME_MAX 64
#define CFG_PROMPT_MAX 512
#define CFG_URL_MAX 256
#define CFG_SHA256_HEX 64

enum cfg_kernel { KERNEL_AUTO, KERNEL_AVX2, KERNEL_PORTABLE, KERNEL_AVX2_128 };

struct config {
    int repl;                     /* mode: 0 script, 1 repl */
    char model[CFG_NAME_MAX];
    char tokenizer[CFG_NAME_MAX];
    char prompt[CFG_PROMPT_MAX];
    uint32_t steps;
    uint64_t seed;
    float temperature;
    float topp;
    uint32_t repeats;
    enum cfg_kernel kernel;
    int bench;
    uint32_t bench_runs;
    float slowdown_pct;
    int shutdown;
    /* Network boot (empty URL: disk only). The digests are lowercase hex, or empty. */
    char model_url[CFG_URL_MAX];
    char tokenizer_url[CFG_URL_MAX];
    char model_sha256[CFG_SHA256_HEX + 1];
    char tokenizer_sha256[CFG_SHA256_HEX + 1];
    uint32_t net_timeout_ms;      /* connect and per-read timeout */
};

struct cfg_error {
    const char *reason;           /* unknown_key, bad_value or syntax */
    char detail[160];
};

void config_defaults(struct config *cfg);
/* Applies the file's settings over cfg. Returns 0, or -1 with err filled. */
int config_parse(struct config *cfg, const char *text, size_t len, struct cfg_error *err);
const char *config_kernel_name(enum cfg_kernel kernel);

#endif
