/* The few math functions the core needs, without libm. */
#ifndef BM_MATHF_H
#define BM_MATHF_H

float bm_expf(float x);
float bm_sqrtf(float x);
double bm_exp(double x);
double bm_log(double x);   /* x > 0 */
double bm_sin(double x);
double bm_cos(double x);
double bm_pow(double base, double e);   /* base > 0 */

/* In place: x becomes exp(x - max) / sum over n values. */
void softmax(float *x, int n);

/* In place: h[i] = silu(h[i]) * g[i], silu(v) = v / (1 + exp(-v)). */
void silu_mul(float *h, const float *g, int n);

#define BM_PI 3.14159265358979323846

#endif
