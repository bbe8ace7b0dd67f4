// Device helpers shared by every kernel: the arithmetic of the CPU reference
// (src/vision/ridge.rs), operation for operation and in the same order. The kernels are
// compiled with --fmad=false, so that a*b+c is rounded twice as on the CPU: with the IEEE
// operations (add, multiply, divide, square root) a kernel then gives the reference's bits.
#pragma once

typedef unsigned char wt_u8;
typedef unsigned short wt_u16;

// Symmetric reflection at the borders (d c b a | a b c d | d c b a), as ridge.rs's reflect.
__device__ __forceinline__ int wt_reflect(int i, int n) {
    if (i >= 0 && i < n) {
        return i;
    }
    int period = 2 * n;
    int m = i % period;
    if (m < 0) {
        m += period;
    }
    if (m >= n) {
        m = period - 1 - m;
    }
    return m;
}

// Eigenvalues of [[xx, xy], [xy, yy]], the smaller magnitude first.
__device__ __forceinline__ void wt_eigenvalues(float xx, float xy, float yy, float* l1, float* l2) {
    float mean = 0.5f * (xx + yy);
    float half_diff = 0.5f * (xx - yy);
    float root = sqrtf(half_diff * half_diff + xy * xy);
    float a = mean + root;
    float b = mean - root;
    if (fabsf(a) <= fabsf(b)) {
        *l1 = a;
        *l2 = b;
    } else {
        *l1 = b;
        *l2 = a;
    }
}

// Unit eigenvector of eigenvalue l2: the normal across a ridge.
__device__ __forceinline__ void wt_normal(float xx, float xy, float yy, float l2, float* nx, float* ny) {
    float x;
    float y;
    if ((xy != 0.0f) | (l2 != xx)) {
        x = xy;
        y = l2 - xx;
    } else {
        x = l2 - yy;
        y = xy;
    }
    float norm = sqrtf(x * x + y * y);
    if (norm > 0.0f) {
        *nx = x / norm;
        *ny = y / norm;
    } else {
        *nx = 1.0f;
        *ny = 0.0f;
    }
}

// The normal across a ridge of the Hessian [[xx, xy], [xy, yy]]: ridge.rs's normal_at.
__device__ __forceinline__ void wt_normal_at(float xx, float xy, float yy, float* nx, float* ny) {
    float l1;
    float l2;
    wt_eigenvalues(xx, xy, yy, &l1, &l2);
    wt_normal(xx, xy, yy, l2, nx, ny);
}

// e^x as ridge.rs's exp: range reduction by ln 2 and a degree-5 polynomial, no library call,
// so that both sides round alike.
__device__ __forceinline__ float wt_exp(float x) {
    const float LN2_HI = 0.6933594f;
    const float LN2_LO = -2.1219444e-4f;
    const float ROUND = 12582912.0f;
    const float LOG2_E = 1.44269504088896340736f;
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float shifted = x * LOG2_E + ROUND;
    float n = shifted - ROUND;
    float r = x - n * LN2_HI - n * LN2_LO;
    float p = ((((1.9875692e-4f * r + 1.3981999e-3f) * r + 8.333452e-3f) * r + 4.1665796e-2f) * r + 1.6666665e-1f)
            * r
        + 0.5f;
    unsigned int bits = (__float_as_uint(shifted) - __float_as_uint(ROUND) + 127u) << 23;
    float two_n = __uint_as_float(bits);
    return (p * r * r + r + 1.0f) * two_n;
}

// The index step to the neighbour across a ridge whose normal is (nx, ny) in a plane w wide:
// the direction rounded to one of the four pixel directions by comparison against tan(pi/8),
// as ridge.rs's across_step (no arctangent, whose last bit differs between libraries).
__device__ __forceinline__ int wt_across_step(float nx, float ny, int w) {
    const float TAN_PI_8 = 0.41421357f;
    float x = nx;
    float y = ny;
    if (ny < 0.0f || (ny == 0.0f && nx < 0.0f)) {
        x = -nx;
        y = -ny;
    }
    if (y < TAN_PI_8 * fabsf(x)) {
        return 1;
    }
    if (fabsf(x) <= TAN_PI_8 * y) {
        return w;
    }
    return x > 0.0f ? w + 1 : w - 1;
}

__device__ __forceinline__ float wt_clamp(float v, float lo, float hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}
