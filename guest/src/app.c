/* The script of MARKERS.md, from [boot] to [done]. */
#include "app.h"
#include "bench.h"
#include "bmlib.h"
#include "config.h"
#include "cpu.h"
#include "download.h"
#include "generate.h"
#include "model.h"
#include "out.h"
#include "perf.h"
#include "platform.h"
#include "sampler.h"
#include "tokenizer.h"
#include "transformer.h"

#ifndef BM_BUILD_ID
#define BM_BUILD_ID "unknown"
#endif

#define GUEST_VERSION "0.1.0"

/* The configuration is static: its prompt buffer is too big for a small firmware stack. */
static struct config cfg;
static char repl_line[CFG_PROMPT_MAX];

static void print_boot(void)
{
    struct plat_firmware_info fw;
    bm_memset(&fw, 0, sizeof fw);
    plat_firmware_info(&fw);
    out_str("[boot] name=bm-ref-guest");
    out_kv_str("version", GUEST_VERSION);
    out_kv_str("build", BM_BUILD_ID);
    out_kv_str("platform", fw.platform ? fw.platform : "-");
    fw.vendor[sizeof fw.vendor - 1] = 0;
    out_kv_quoted("fw_vendor", fw.vendor[0] ? fw.vendor : "-");
    out_kv_hex("fw_revision", fw.revision);
    out_str(" uefi=");
    out_u64(fw.uefi_major);
    out_str(".");
    out_u64(fw.uefi_minor);
    out_end();
}

static void print_cfg(const struct config *c)
{
    out_str("[cfg]");
    out_kv_str("mode", c->repl ? "repl" : "script");
    out_kv_str("model", c->model);
    out_kv_str("tokenizer", c->tokenizer);
    out_kv_quoted("prompt", c->prompt);
    out_kv_u64("steps", c->steps);
    out_kv_u64("seed", c->seed);
    out_kv_fixed("temperature", c->temperature, 3);
    out_kv_fixed("topp", c->topp, 3);
    out_kv_u64("repeats", c->repeats);
    out_kv_str("kernel", config_kernel_name(c->kernel));
    out_kv_u64("bench", (uint64_t)c->bench);
    out_kv_u64("bench_runs", c->bench_runs);
    out_kv_fixed("slowdown_pct", c->slowdown_pct, 3);
    out_end();
}

static int read_config(const char *name)
{
    uint8_t *data;
    size_t size;
    const char *reason = "read_failed";
    config_defaults(&cfg);
    if (plat_read_file(name, &data, &size, &reason) != 0) {
        if (bm_streq(reason, "missing"))
            return 0;
        out_error("cfg", name, reason, "cannot read the configuration file");
        return -1;
    }
    struct cfg_error err;
    int r = config_parse(&cfg, (const char *)data, size, &err);
    plat_free(data, size);
    if (r != 0) {
        out_error("cfg", name, err.reason, err.detail);
        return -1;
    }
    return 0;
}

static void finish(int ok)
{
    out_str("[done]");
    out_kv_str("status", ok ? "ok" : "error");
    out_end();
    plat_shutdown(ok, !cfg.shutdown);
}

/* Everything the generation needs, carved from one plat_alloc. */
struct run_state {
    struct transformer tf;
    struct sampler smp;
    struct generator gen;
    struct gen_stats *stats;
    double *scratch;
};

static int run_generation(struct model *m, struct tokenizer *tok, const struct kernels *k,
                          uint64_t tsc_hz)
{
    struct run_state rs;
    int vocab = m->cfg.vocab_size;
    size_t prompt_ids = tokenizer_max_ids(CFG_PROMPT_MAX);
    size_t repeats = cfg.repeats;
    size_t bytes = transformer_arena_bytes(m) + tokenizer_arena_bytes(tok) +
                   sampler_arena_bytes(vocab) + bm_arena_need(prompt_ids * sizeof(int32_t)) +
                   bm_arena_need(((size_t)m->cfg.seq_len + 1) * sizeof(int32_t)) +
                   bm_arena_need(repeats * sizeof(struct gen_stats)) +
                   bm_arena_need(2 * repeats * sizeof(double));
    void *block = plat_alloc(bytes);
    if (!block) {
        out_error("memory", "-", "no_memory", "run state does not fit in memory");
        return -1;
    }
    struct bm_arena arena;
    bm_arena_init(&arena, block, bytes);
    int failed = transformer_init(&rs.tf, m, k, &arena) != 0 ||
                 tokenizer_build(tok, &arena) != 0 ||
                 sampler_init(&rs.smp, vocab, cfg.temperature, cfg.topp, cfg.seed, &arena) != 0;
    rs.gen.prompt_ids = bm_arena_take(&arena, prompt_ids * sizeof(int32_t));
    rs.gen.ids = bm_arena_take(&arena, ((size_t)m->cfg.seq_len + 1) * sizeof(int32_t));
    rs.stats = bm_arena_take(&arena, repeats * sizeof(struct gen_stats));
    rs.scratch = bm_arena_take(&arena, 2 * repeats * sizeof(double));
    if (failed || !rs.gen.prompt_ids || !rs.gen.ids || !rs.stats || !rs.scratch) {
        out_error("memory", "-", "no_memory", "run state arena too small");
        plat_free(block, bytes);
        return -1;
    }
    rs.gen.tf = &rs.tf;
    rs.gen.tok = tok;
    rs.gen.smp = &rs.smp;
    rs.gen.steps = cfg.steps;
    rs.gen.seed = cfg.seed;
    rs.gen.slowdown_pct = cfg.slowdown_pct;
    rs.gen.tsc_hz = tsc_hz;

    int status = 0;
    if (!cfg.repl) {
        for (uint32_t r = 0; r < cfg.repeats && status == 0; r++) {
            status = generate(&rs.gen, cfg.prompt, r + 1, &rs.stats[r]);
            if (status == 0)
                perf_print_repeat(r + 1, &rs.stats[r], tsc_hz);
        }
        if (status == 0)
            perf_print_summary(rs.stats, cfg.repeats, tsc_hz, rs.scratch);
    } else {
        uint32_t k = 0;
        for (;;) {
            out_str("[repl] ready");
            out_end();
            int len = plat_read_line(repl_line, sizeof repl_line);
            if (len < 0)
                break;
            if (len == 0)
                continue;
            if (bm_streq(repl_line, "/quit"))
                break;
            out_str("[repl]");
            out_kv_quoted("prompt", repl_line);
            out_end();
            k++;
            if (generate(&rs.gen, repl_line, k, &rs.stats[0]) != 0) {
                status = -1;
                break;
            }
            perf_print_repeat(k, &rs.stats[0], tsc_hz);
        }
    }
    plat_free(block, bytes);
    return status;
}

/* A model or tokenizer file: from its URL when one is configured (download.c prints the
 * [net] lines), else, or after a [net] fallback, from the disk. */
struct loaded_file {
    uint8_t *data;
    size_t size;
    size_t alloc;             /* for plat_free */
};

static int load_file(struct net_session *net, const char *name, const char *url,
                     const char *sha256_hex, struct loaded_file *out, const char **reason)
{
    if (url[0]) {
        struct download d;
        if (download_file(net, name, url, sha256_hex, &d) == 0) {
            out->data = d.data;
            out->size = d.size;
            out->alloc = d.alloc;
            return 0;
        }
    }
    if (plat_read_file(name, &out->data, &out->size, reason) != 0)
        return -1;
    out->alloc = out->size;
    return 0;
}

int app_run(const char *cfg_name)
{
    int ok = 1;
    print_boot();
    if (read_config(cfg_name) != 0) {
        finish(0);
        return 1;
    }
    print_cfg(&cfg);

    struct cpu_info cpu;
    cpu_detect(&cpu);
    cpu_print(&cpu);
    int avx_state = plat_enable_avx();
    struct kernel_choice choice = cpu_choose_kernel(cfg.kernel, &cpu, avx_state);
    cpu_print_kernel(choice);
    const struct kernels *k = choice.kernel == KID_AVX2       ? &kernels_avx2
                              : choice.kernel == KID_AVX2_128 ? &kernels_avx2_128
                                                              : &kernels_portable;

    struct plat_timer_info timer;
    bm_memset(&timer, 0, sizeof timer);
    if (plat_timer_init(&timer) != 0 || timer.tsc_hz == 0) {
        out_error("timer", "-", "bad_value", "TSC calibration failed");
        finish(0);
        return 1;
    }
    out_str("[timer]");
    out_kv_str("source", timer.source ? timer.source : "-");
    out_kv_u64("tsc_hz", timer.tsc_hz);
    out_kv_u64("calib_ms", timer.calib_ms);
    if (timer.pm_port)
        out_kv_hex("pm_port", timer.pm_port);
    else
        out_kv_str("pm_port", "-");
    out_end();

    if (cfg.bench) {
        int failed = bench_run_all(cfg.bench_runs, timer.tsc_hz);
        if (failed < 0) {
            out_error("memory", "-", "no_memory", "benchmark scratch");
            ok = 0;
        } else if (failed > 0) {
            ok = 0;
        }
    }

    struct net_session net;
    net_session_init(&net, timer.tsc_hz, cfg.net_timeout_ms);
    struct loaded_file model_file, tok_file;
    const char *reason = "read_failed";
    if (load_file(&net, cfg.model, cfg.model_url, cfg.model_sha256, &model_file, &reason) != 0) {
        out_error("model", cfg.model, reason,
                  cfg.model_url[0] ? "not from the network, nor from the disk"
                                   : "cannot read the checkpoint");
        finish(0);
        return 1;
    }
    struct model model;
    struct model_error merr;
    if (model_load(&model, model_file.data, model_file.size, &merr) != 0) {
        out_error("model", cfg.model, merr.reason, merr.detail);
        finish(0);
        return 1;
    }
    model_print(&model, cfg.model);

    reason = "read_failed";
    if (load_file(&net, cfg.tokenizer, cfg.tokenizer_url, cfg.tokenizer_sha256, &tok_file,
                  &reason) != 0) {
        out_error("tokenizer", cfg.tokenizer, reason,
                  cfg.tokenizer_url[0] ? "not from the network, nor from the disk"
                                       : "cannot read the tokenizer");
        finish(0);
        return 1;
    }
    struct tokenizer tok;
    struct tok_error terr;
    if (tokenizer_check(&tok, tok_file.data, tok_file.size, model.cfg.vocab_size, &terr) != 0) {
        out_error("tokenizer", cfg.tokenizer, terr.reason, terr.detail);
        finish(0);
        return 1;
    }
    tokenizer_print(&tok, cfg.tokenizer);

    if (run_generation(&model, &tok, k, timer.tsc_hz) != 0)
        ok = 0;
    plat_free(tok_file.data, tok_file.alloc);
    plat_free(model_file.data, model_file.alloc);
    finish(ok);
    return ok ? 0 : 1;
}
