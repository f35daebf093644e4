#include "mathf.h"
#include "test.h"

static int near(double got, double want, double rel)
{
    double d = got - want;
    if (d < 0)
        d = -d;
    double m = want < 0 ? -want : want;
    return d <= rel * (m > 1e-30 ? m : 1e-30);
}

void test_math(void)
{
    CHECK(near(bm_expf(1.5f), 4.4816890703380645, 1e-6));
    CHECK(near(bm_expf(-10.25f), 3.535750085040998e-05, 1e-6));
    CHECK(bm_expf(0.0f) == 1.0f);
    CHECK(bm_expf(-200.0f) == 0.0f);
    CHECK(bm_expf(200.0f) > 1e38f);   /* clamped, finite */
    CHECK(near(bm_exp(1.5), 4.4816890703380645, 1e-14));
    CHECK(near(bm_sin(100.0), -0.5063656411097588, 1e-12));
    CHECK(near(bm_cos(1000.5), 0.09710690144438526, 1e-10));
    CHECK(near(bm_pow(10000.0, -6.0 / 48.0), 0.31622776601683794, 1e-14));
    CHECK(near(bm_log(7.5), 2.0149030205422647, 1e-14));
    CHECK(bm_sqrtf(16.0f) == 4.0f);
    for (int i = -80; i <= 80; i++) {
        float x = (float)i * 1.09f;
        CHECK(near(bm_expf(x), bm_exp((double)x), 5e-7));
    }

    /* the block (SSE2) paths of silu_mul and softmax give the scalar results bit for bit,
     * including the clamps (below -87, above 88) and an odd tail */
    enum { N = 203 };
    float h[N], g[N], want[N], sm[N], e[N];
    float sum = 0.0f, max = -1e30f;
    for (int i = 0; i < N; i++) {
        float v = (float)(i - 101) * 0.987f;
        h[i] = v;
        g[i] = 0.5f + (float)(i % 7) * 0.25f;
        want[i] = v * (1.0f / (1.0f + bm_expf(-v))) * g[i];
        sm[i] = (float)((i * 37) % 211 - 105) * 0.9f;
        if (sm[i] > max)
            max = sm[i];
    }
    for (int i = 0; i < N; i++) {
        e[i] = bm_expf(sm[i] - max);
        sum += e[i];
    }
    silu_mul(h, g, N);
    softmax(sm, N);
    int silu_same = 1, softmax_same = 1;
    for (int i = 0; i < N; i++) {
        silu_same &= h[i] == want[i];
        softmax_same &= sm[i] == e[i] / sum;
    }
    CHECK(silu_same);
    CHECK(softmax_same);
}
