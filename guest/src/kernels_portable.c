/* Plain C written so that gcc -O2 vectorises it with SSE2: independent partial sums in
 * fixed-size blocks (floating-point sums are not reassociated without -ffast-math). */
#include "kernels.h"

static float dot_portable(const float *a, const float *b, int n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int j = 0;
    for (; j + 8 <= n; j += 8) {
        for (int l = 0; l < 8; l++)
            acc[l] += a[j + l] * b[j + l];
    }
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; j < n; j++)
        sum += a[j] * b[j];
    return sum;
}

static void matmul_portable(float *out, const float *x, const float *w, int n, int d)
{
    for (int i = 0; i < d; i++)
        out[i] = dot_portable(x, w + (long)i * n, n);
}

static void axpy_portable(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

const struct kernels kernels_portable = {matmul_portable, dot_portable, axpy_portable};
