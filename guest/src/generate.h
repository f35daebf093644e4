/* One generation: encode the prompt, prefill, sample and print tokens, report times. */
#ifndef BM_GENERATE_H
#define BM_GENERATE_H

#include <stdint.h>
#include "perf.h"
#include "sampler.h"
#include "tokenizer.h"
#include "transformer.h"

struct generator {
    struct transformer *tf;
    struct tokenizer *tok;
    struct sampler *smp;
    int32_t *prompt_ids;      /* tokenizer_max_ids(CFG_PROMPT_MAX) entries */
    int32_t *ids;             /* seq_len + 1 entries */
    uint32_t steps;
    uint64_t seed;
    float slowdown_pct;
    uint64_t tsc_hz;
};

/* Prints [gen] begin, the text, [gen] end, prompt_ids and ids. Returns 0, or -1 after
 * printing an [error] line. */
int generate(struct generator *g, const char *prompt, uint32_t repeat, struct gen_stats *stats);

#endif
