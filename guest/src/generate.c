#include "generate.h"
#include "out.h"
#include "platform.h"

/* Generated text goes out as bytes; newlines become CR LF and other control bytes '?',
 * so the text cannot forge escape sequences or bare CRs on the console. */
static int print_piece(const uint8_t *p, size_t len, int at_line_start)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = p[i];
        if (c == '\n') {
            out_raw("\r\n", 2);
            at_line_start = 1;
            continue;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            c = '?';
        out_raw((const char *)&c, 1);
        at_line_start = 0;
    }
    out_flush();
    return at_line_start;
}

static void print_ids(const char *key, const int32_t *ids, uint32_t n)
{
    out_str("[gen] ");
    out_str(key);
    out_str("=");
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            out_str(",");
        out_u64((uint64_t)ids[i]);
    }
    out_end();
}

int generate(struct generator *g, const char *prompt, uint32_t repeat, struct gen_stats *stats)
{
    const struct model_config *c = &g->tf->m->cfg;
    uint32_t n = (uint32_t)tokenizer_encode(g->tok, prompt, g->prompt_ids);
    if (n > (uint32_t)c->seq_len) {
        out_error("gen", "-", "too_large", "prompt has more tokens than seq_len");
        return -1;
    }
    /* At most seq_len forward passes: n for the prompt, one per generated token but the last. */
    uint32_t steps = g->steps;
    if (steps > (uint32_t)c->seq_len - n + 1)
        steps = (uint32_t)c->seq_len - n + 1;

    out_str("[gen] begin");
    out_kv_u64("repeat", repeat);
    out_kv_u64("prompt_tokens", n);
    out_kv_u64("steps", steps);
    out_kv_fixed("temperature", g->smp->temperature, 3);
    out_kv_fixed("topp", g->smp->topp, 3);
    out_kv_u64("seed", g->seed);
    out_end();

    rng_seed(&g->smp->rng, g->seed);
    bm_memset(stats, 0, sizeof *stats);
    stats->prompt_tokens = n;

    uint64_t start = plat_cycles();
    float *logits = 0;
    for (uint32_t pos = 0; pos < n; pos++)
        logits = transformer_forward(g->tf, g->prompt_ids[pos], (int)pos);
    uint64_t prefill_end = plat_cycles();
    stats->prefill_cycles = prefill_end - start;

    uint32_t count = 0;
    int prev = g->prompt_ids[n - 1];
    int at_line_start = 1;
    uint64_t first = 0, mark = 0;
    while (count < steps) {
        int next = sampler_sample(g->smp, logits);
        if (next == TOKEN_BOS || next == TOKEN_EOS)
            break;
        size_t len;
        const uint8_t *piece = tokenizer_decode(g->tok, prev, next, &len);
        at_line_start = print_piece(piece, len, at_line_start);
        g->ids[count++] = next;
        prev = next;
        uint64_t now = plat_cycles();
        if (count == 1) {
            first = now;
            stats->first_token_cycles = now - start;
        } else if (g->slowdown_pct > 0.0f) {
            perf_busy_wait((uint64_t)((double)(now - mark) * g->slowdown_pct / 100.0));
            now = plat_cycles();
        }
        mark = now;
        if (count == steps)
            break;
        logits = transformer_forward(g->tf, next, (int)(n + count - 1));
    }
    if (count > 0) {
        stats->decode_tokens = count - 1;
        stats->decode_cycles = mark - first;
    }
    stats->tokens = count;

    if (!at_line_start)
        out_str("\r\n");
    out_str("[gen] end");
    out_kv_u64("tokens", count);
    out_end();
    print_ids("prompt_ids", g->prompt_ids, n);
    print_ids("ids", g->ids, count);
    return 0;
}
