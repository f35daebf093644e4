/* In-place radix-2 complex FFT, for the fft benchmark module. */
#ifndef BM_FFT_H
#define BM_FFT_H

/* n a power of two; re and im hold n values each. */
void fft(double *re, double *im, int n);

#endif
