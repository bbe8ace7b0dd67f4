// The learned engine's input (src/vision/features.rs, definition version 1) for a region of
// the frame, packed into the engine's channel-major buffer of ew × eh per channel (rows past
// the region are left as they are: zero): the log attenuation minus its median over the
// region, and λ1, λ2 at σ = 1 and 2 px from whole-frame Hessians, all clamped to ±clamp; with
// the normal at σ = 1 px for sub-pixel refinement.
#include "common.cuh"

extern "C" __global__ void wt_pack_features(const float* att, const float* xx1, const float* xy1, const float* yy1,
                                            const float* xx2, const float* xy2, const float* yy2, int fw,
                                            int roi_x, int roi_y, int rw, int rh, float median, float clamp,
                                            float* out, int ew, int eh, float* nx, float* ny) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= rw || y >= rh) {
        return;
    }
    size_t f = (size_t)(roi_y + y) * fw + roi_x + x;
    size_t plane = (size_t)ew * eh;
    size_t o = (size_t)y * ew + x;
    out[o] = wt_clamp(att[f] - median, -clamp, clamp);
    float l1;
    float l2;
    wt_eigenvalues(xx1[f], xy1[f], yy1[f], &l1, &l2);
    out[plane + o] = wt_clamp(l1, -clamp, clamp);
    out[2 * plane + o] = wt_clamp(l2, -clamp, clamp);
    float vx;
    float vy;
    wt_normal(xx1[f], xy1[f], yy1[f], l2, &vx, &vy);
    nx[(size_t)y * rw + x] = vx;
    ny[(size_t)y * rw + x] = vy;
    wt_eigenvalues(xx2[f], xy2[f], yy2[f], &l1, &l2);
    out[3 * plane + o] = wt_clamp(l1, -clamp, clamp);
    out[4 * plane + o] = wt_clamp(l2, -clamp, clamp);
}
