// The multi-scale Hessian ridge measure (src/vision/ridge.rs, RidgeDetector::detect), one
// kernel per step, each thread one pixel. Separable Gaussian-derivative filters: a row pass
// giving the smoothed, first- and second-derivative rows at once from a shared-memory tile,
// then column passes; per wire scale the ridge depth is folded into the running maximum; the
// thick scale marks catheters, whose neighbourhood is dilated and whose parallel thin
// responses are removed with the echoes along the frame's border.
#include "common.cuh"

// Correlates each row with the smoothing, first- and second-derivative kernels of one scale
// (2r + 1 taps each, centre at r). Launched with blocks of (blockDim.x, 1) and
// (blockDim.x + 2r) floats of shared memory: the tile of the row with r reflected pixels
// either side.
extern "C" __global__ void wt_ridge_rows(const float* in, int w, int h, const float* g, const float* d1,
                                         const float* d2, int r, float* smooth, float* first, float* second) {
    extern __shared__ float tile[];
    int y = blockIdx.y;
    int x0 = blockIdx.x * blockDim.x;
    const float* row = in + (size_t)y * w;
    for (int t = threadIdx.x; t < (int)blockDim.x + 2 * r; t += blockDim.x) {
        tile[t] = row[wt_reflect(x0 + t - r, w)];
    }
    __syncthreads();
    int x = x0 + threadIdx.x;
    if (x >= w || y >= h) {
        return;
    }
    const float* c = tile + threadIdx.x + r;
    float p = c[0];
    float s = g[r] * p;
    float e = d1[r] * p;
    float f = d2[r] * p;
    for (int j = 1; j <= r; ++j) {
        float after = c[j];
        float before = c[-j];
        float sum = after + before;
        float diff = after - before;
        s += g[r + j] * sum;
        f += d2[r + j] * sum;
        e += d1[r + j] * diff;
    }
    size_t i = (size_t)y * w + x;
    smooth[i] = s;
    first[i] = e;
    second[i] = f;
}

// Correlates each column with a symmetric (anti = 0) or antisymmetric (anti = 1) kernel of
// 2r + 1 taps, then multiplies by `scale`.
extern "C" __global__ void wt_ridge_cols(const float* in, int w, int h, const float* k, int r, int anti, float scale,
                                         float* out) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) {
        return;
    }
    float o = anti ? 0.0f : k[r] * in[(size_t)y * w + x];
    for (int j = 1; j <= r; ++j) {
        float a = in[(size_t)wt_reflect(y + j, h) * w + x];
        float b = in[(size_t)wt_reflect(y - j, h) * w + x];
        o += k[r + j] * (anti ? a - b : a + b);
    }
    out[(size_t)y * w + x] = o * scale;
}

// No ridge yet: zero strength and raw depth, normal (1, 0).
extern "C" __global__ void wt_ridge_init(float* strength, float* nx, float* ny, float* raw, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        strength[i] = 0.0f;
        nx[i] = 1.0f;
        ny[i] = 0.0f;
        raw[i] = 0.0f;
    }
}

// Folds one wire scale into the running maximum: the depth -λ2 weighted by the anisotropy
// and step-edge terms where it beats what the smaller scales gave, with its normal; `raw`
// keeps the unweighted maximum depth for the thick-scale comparison.
extern "C" __global__ void wt_ridge_fold(const float* xx, const float* xy, const float* yy, const float* gx,
                                         const float* gy, float* strength, float* nx, float* ny, float* raw, int n,
                                         float two_b2, float edge_tolerance) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    float l1;
    float l2;
    wt_eigenvalues(xx[i], xy[i], yy[i], &l1, &l2);
    float vx;
    float vy;
    wt_normal(xx[i], xy[i], yy[i], l2, &vx, &vy);
    float rb = l1 / l2;
    float depth = -l2;
    float slope = gx[i] * vx + gy[i] * vy;
    float ratio = slope / (depth * edge_tolerance);
    float edge = -0.5f * ratio * ratio;
    float weighted = depth * wt_exp(-(rb * rb / two_b2) + edge);
    bool ridge = depth > 0.0f;
    if (ridge && depth > raw[i]) {
        raw[i] = depth;
    }
    if (ridge && weighted > strength[i]) {
        strength[i] = weighted;
        nx[i] = vx;
        ny[i] = vy;
    }
}

// The thick scale's depth weighted by the anisotropy term, zero where there is no ridge.
extern "C" __global__ void wt_weighted_depth(const float* xx, const float* xy, const float* yy, float* out, int n,
                                             float two_b2) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) {
        return;
    }
    float l1;
    float l2;
    wt_eigenvalues(xx[i], xy[i], yy[i], &l1, &l2);
    float rb = l1 / l2;
    float weighted = -l2 * wt_exp(-(rb * rb / two_b2));
    out[i] = l2 < 0.0f ? weighted : 0.0f;
}

// Marks the axes of thick ridges: the thick depth above `min_depth`, above every wire scale's
// raw depth, and a maximum across the ridge along the thick Hessian's normal (rounded to one
// of the four pixel directions, wt_across_step). Border pixels are never marked.
extern "C" __global__ void wt_thick_centres(const float* depth, const float* raw, const float* xx, const float* xy,
                                            const float* yy, wt_u8* mask, int w, int h, float min_depth) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) {
        return;
    }
    int i = y * w + x;
    wt_u8 marked = 0;
    float t = depth[i];
    if (x > 0 && y > 0 && x < w - 1 && y < h - 1 && !(t <= min_depth || t <= raw[i])) {
        float vx;
        float vy;
        wt_normal_at(xx[i], xy[i], yy[i], &vx, &vy);
        int step = wt_across_step(vx, vy, w);
        marked = t >= depth[i - step] && t >= depth[i + step];
    }
    mask[i] = marked;
}

// Binary dilation by a square, one pass per axis: the maximum over ±radius along rows
// (axis 0) or columns (axis 1), cut at the frame.
extern "C" __global__ void wt_dilate(const wt_u8* in, wt_u8* out, int w, int h, int radius, int axis) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) {
        return;
    }
    int at = axis == 0 ? x : y;
    int n = axis == 0 ? w : h;
    int stride = axis == 0 ? 1 : w;
    int lo = at - radius < 0 ? 0 : at - radius;
    int hi = at + radius > n - 1 ? n - 1 : at + radius;
    const wt_u8* line = in + (axis == 0 ? y * w : x);
    wt_u8 m = 0;
    for (int j = lo; j <= hi; ++j) {
        m = line[j * stride] > m ? line[j * stride] : m;
    }
    out[y * w + x] = m;
}

// Removes thin responses that run parallel to a masked thick structure (its walls), then
// the echoes parallel to the frame's border within `margin` of it.
extern "C" __global__ void wt_ridge_finish(float* strength, const float* nx, const float* ny, const wt_u8* mask,
                                           const float* xx, const float* xy, const float* yy, int w, int h,
                                           float min_cos, int margin) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) {
        return;
    }
    int i = y * w + x;
    float v = strength[i];
    if (mask[i] != 0 && v > 0.0f) {
        float tx;
        float ty;
        wt_normal_at(xx[i], xy[i], yy[i], &tx, &ty);
        if (fabsf(nx[i] * tx + ny[i] * ty) > min_cos) {
            v = 0.0f;
        }
    }
    bool near_row = y < margin || y + margin >= h;
    bool near_col = x < margin || x + margin >= w;
    bool along_row = near_row && fabsf(ny[i]) > min_cos;
    bool along_col = near_col && fabsf(nx[i]) > min_cos;
    if (along_row || along_col) {
        v = 0.0f;
    }
    strength[i] = v;
}
