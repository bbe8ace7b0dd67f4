// Detector values to log attenuation through the CPU normaliser's table
// (src/vision/normalise.rs): out = lut[min(pixel, top)].
#include "common.cuh"

extern "C" __global__ void wt_log_attenuation(const wt_u16* pixels, const float* lut, int top, float* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        int v = pixels[i];
        out[i] = lut[v < top ? v : top];
    }
}
