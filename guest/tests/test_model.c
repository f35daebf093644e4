#include <stdlib.h>
#include <string.h>
#include "model.h"
#include "test.h"

static const char *load_reason(const char *file)
{
    unsigned char *data;
    unsigned long size;
    struct model m;
    struct model_error err;
    static char result[32];
    if (test_read(file, &data, &size) != 0)
        return "unreadable";
    int r = model_load(&m, data, size, &err);
    strcpy(result, r == 0 ? "ok" : err.reason);
    free(data);
    return result;
}

void test_model(void)
{
    unsigned char *data;
    unsigned long size;
    struct model m;
    struct model_error err;

    CHECK(test_read("model_shared.bin", &data, &size) == 0);
    CHECK(model_load(&m, data, size, &err) == 0);
    CHECK(m.cfg.dim == 16 && m.cfg.hidden_dim == 40 && m.cfg.n_layers == 2);
    CHECK(m.cfg.n_heads == 4 && m.cfg.n_kv_heads == 4 && m.cfg.vocab_size == 380);
    CHECK(m.cfg.seq_len == 48 && m.cfg.shared_classifier == 1);
    CHECK(m.w.wcls == m.w.token_embedding);
    CHECK(m.w.rms_att[0] == 1.0f && m.w.rms_final[15] == 1.0f);   /* norms are ones */
    /* params: the Python Config.param_count() for these dimensions */
    CHECK(m.params == 380u * 16 + 2 * 16 + 2 * 4 * 16 * 16 + 2 * 16 + 3 * 2 * 40 * 16 + 16);
    free(data);

    CHECK(test_read("model_separate.bin", &data, &size) == 0);
    CHECK(model_load(&m, data, size, &err) == 0);
    CHECK(m.cfg.shared_classifier == 0 && m.cfg.vocab_size == 380);
    CHECK((const unsigned char *)m.w.wcls == data + size - 380 * 16 * 4);
    free(data);

    CHECK(test_read("model_gqa.bin", &data, &size) == 0);
    CHECK(model_load(&m, data, size, &err) == 0);
    CHECK(m.cfg.n_heads == 8 && m.cfg.n_kv_heads == 2);
    CHECK(m.w.wv - m.w.wk == 2 * 8 * 32);   /* wk is (layers, kv_dim=8, dim=32) */
    free(data);

    CHECK(strcmp(load_reason("bad_truncated.bin"), "truncated") == 0);
    CHECK(strcmp(load_reason("bad_too_large.bin"), "too_large") == 0);
    CHECK(strcmp(load_reason("bad_short.bin"), "truncated") == 0);
    CHECK(strcmp(load_reason("bad_header.bin"), "bad_header") == 0);
    CHECK(strcmp(load_reason("bad_inconsistent.bin"), "inconsistent") == 0);

    /* A header claiming huge dimensions must fail cleanly, not overflow. */
    int32_t huge[7] = {1 << 16, 1 << 18, 1 << 10, 1 << 12, 1 << 12, -(1 << 20), 1 << 20};
    CHECK(model_load(&m, (const uint8_t *)huge, sizeof huge, &err) == -1);
    CHECK(strcmp(err.reason, "truncated") == 0);
    int32_t odd_head[7] = {12, 8, 1, 4, 4, 10, 4};   /* head size 3 */
    CHECK(model_load(&m, (const uint8_t *)odd_head, sizeof odd_head, &err) == -1);
    CHECK(strcmp(err.reason, "inconsistent") == 0);
    int32_t zero_layers[7] = {16, 8, 0, 4, 4, 10, 4};
    CHECK(model_load(&m, (const uint8_t *)zero_layers, sizeof zero_layers, &err) == -1);
    CHECK(strcmp(err.reason, "bad_header") == 0);
}
