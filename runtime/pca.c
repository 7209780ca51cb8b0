/* pca.c — principal component analysis, the autoencoder's classical rival.
 *
 * Takes data (n, d) of the model's dtype and produces the mean, the top k
 * principal directions and the covariance's eigenvalues: the covariance is
 * accumulated in double over blocks of rows (cblas_dsyrk), so the data is
 * never copied whole, and LAPACKE_dsyevd diagonalizes it. Also the MSE of
 * the rank-k reconstruction and the principal angles between two subspaces
 * (QR by LAPACKE_dgeqrf/dorgqr, then the singular values of Q1ᵀQ2).
 */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "apps.h"

#define ROW_BLOCK 1024

/* Rows [i, i + rows) of x, centred, as doubles. */
static void centred_block(const void *x, int dtype, int64_t i, int64_t rows, int64_t d,
                          const double *mean, double *out) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < d; j++)
            out[r * d + j] = aec_get(x, dtype, (i + r) * d + j) - mean[j];
}

int aec_pca_fit(const void *x, int dtype, int64_t n, int64_t d, int64_t k, double *mean,
                double *dirs, double *eigenvalues) {
    double *cov = calloc((size_t)(d * d), sizeof *cov);
    double *blk = malloc((size_t)(ROW_BLOCK * d) * sizeof *blk);
    if (!cov || !blk) {
        free(cov);
        free(blk);
        aec_error("PCA: out of memory for a %lld x %lld covariance", (long long)d, (long long)d);
        return AEC_ENOMEM;
    }
    memset(mean, 0, (size_t)d * sizeof *mean);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < d; j++)
            mean[j] += aec_get(x, dtype, i * d + j);
    for (int64_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    for (int64_t i = 0; i < n; i += ROW_BLOCK) {
        int64_t rows = n - i < ROW_BLOCK ? n - i : ROW_BLOCK;
        centred_block(x, dtype, i, rows, d, mean, blk);
        /* cov (upper) += blkᵀ · blk */
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)rows, 1.0, blk, (int)d, 1.0,
                    cov, (int)d);
    }
    for (int64_t j = 0; j < d * d; j++)
        cov[j] /= (double)(n > 1 ? n - 1 : 1);
    double *w = malloc((size_t)d * sizeof *w);
    int info =
        w ? LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)d, cov, (lapack_int)d, w) : -1;
    if (info != 0) {
        aec_error("PCA: LAPACKE_dsyevd failed (info %d)", info);
        free(cov);
        free(blk);
        free(w);
        return AEC_ENOMEM;
    }
    /* Eigenvalues come ascending, eigenvectors as columns: take them from the top. */
    for (int64_t j = 0; j < d; j++)
        eigenvalues[j] = w[d - 1 - j];
    for (int64_t c = 0; c < k; c++)
        for (int64_t j = 0; j < d; j++)
            dirs[c * d + j] = cov[j * d + (d - 1 - c)];
    free(cov);
    free(blk);
    free(w);
    return AEC_OK;
}

double aec_pca_mse(const void *x, int dtype, int64_t n, int64_t d, int64_t k, const double *mean,
                   const double *dirs) {
    double *blk = malloc((size_t)(ROW_BLOCK * d) * sizeof *blk);
    double *c = malloc((size_t)(ROW_BLOCK * k) * sizeof *c);
    double *back = malloc((size_t)(ROW_BLOCK * d) * sizeof *back);
    double sum = 0;
    if (!blk || !c || !back) {
        sum = NAN;
        n = 0;
    }
    for (int64_t i = 0; i < n; i += ROW_BLOCK) {
        int64_t rows = n - i < ROW_BLOCK ? n - i : ROW_BLOCK;
        centred_block(x, dtype, i, rows, d, mean, blk);
        /* c = blk · dirsᵀ (the codes), back = c · dirs (the reconstruction) */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)d, 1.0, blk,
                    (int)d, dirs, (int)d, 0.0, c, (int)k);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)d, (int)k, 1.0, c,
                    (int)k, dirs, (int)d, 0.0, back, (int)d);
        for (int64_t j = 0; j < rows * d; j++)
            sum += (blk[j] - back[j]) * (blk[j] - back[j]);
    }
    free(blk);
    free(c);
    free(back);
    return n ? sum / ((double)n * (double)d) : sum;
}

/* Replaces the rows of a (k, d) by an orthonormal basis of their span, as
 * the columns of q (d, k). */
static int orthonormal(const double *a, int64_t k, int64_t d, double *q) {
    for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < d; j++)
            q[j * k + i] = a[i * d + j];
    double *tau = malloc((size_t)k * sizeof *tau);
    if (!tau) return -1;
    int info =
        LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (lapack_int)d, (lapack_int)k, q, (lapack_int)k, tau);
    if (!info)
        info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (lapack_int)d, (lapack_int)k, (lapack_int)k, q,
                              (lapack_int)k, tau);
    free(tau);
    return info;
}

int aec_principal_angles(const double *a, const double *b, int64_t k, int64_t d, double *deg) {
    double *qa = malloc((size_t)(d * k) * sizeof *qa), *qb = malloc((size_t)(d * k) * sizeof *qb);
    double *mm = malloc((size_t)(k * k) * sizeof *mm), *s = malloc((size_t)k * sizeof *s);
    double *super = malloc((size_t)k * sizeof *super);
    int info = qa && qb && mm && s && super ? 0 : -1;
    if (!info) info = orthonormal(a, k, d, qa);
    if (!info) info = orthonormal(b, k, d, qb);
    if (!info) {
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)k, (int)d, 1.0, qa,
                    (int)k, qb, (int)k, 0.0, mm, (int)k);
        info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', (lapack_int)k, (lapack_int)k, mm,
                              (lapack_int)k, s, NULL, 1, NULL, 1, super);
    }
    /* Singular values descending are the cosines of the angles ascending. */
    for (int64_t i = 0; !info && i < k; i++)
        deg[i] = acos(s[i] > 1 ? 1 : s[i] < -1 ? -1 : s[i]) * 180 / M_PI;
    free(qa);
    free(qb);
    free(mm);
    free(s);
    free(super);
    if (info) aec_error("principal angles: LAPACK failed (info %d)", info);
    return info ? AEC_ENOMEM : AEC_OK;
}
