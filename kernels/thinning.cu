// One Zhang-Suen sub-iteration (src/vision/thinning.rs): every pixel of `in` is tested on the
// unchanged image, the survivors written to `out`; the outermost rows and columns are never
// removed. The host alternates the two sub-iterations between two buffers until a whole
// iteration sets no `changed` flag.
#include "common.cuh"

extern "C" __global__ void wt_zhang_suen(const wt_u8* in, wt_u8* out, int w, int h, int second, int* changed) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) {
        return;
    }
    int i = y * w + x;
    wt_u8 v = in[i];
    if (v == 0 || x == 0 || y == 0 || x == w - 1 || y == h - 1) {
        out[i] = v;
        return;
    }
    int p2 = in[i - w];
    int p3 = in[i - w + 1];
    int p4 = in[i + 1];
    int p5 = in[i + w + 1];
    int p6 = in[i + w];
    int p7 = in[i + w - 1];
    int p8 = in[i - 1];
    int p9 = in[i - w - 1];
    int ring[9] = {p2, p3, p4, p5, p6, p7, p8, p9, p2};
    int transitions = 0;
    for (int k = 0; k < 8; ++k) {
        transitions += (ring[k] == 0 && ring[k + 1] == 1);
    }
    int neighbours = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9;
    int m1 = second ? p2 * p4 * p8 : p2 * p4 * p6;
    int m2 = second ? p2 * p6 * p8 : p4 * p6 * p8;
    if (transitions == 1 && neighbours >= 2 && neighbours <= 6 && m1 == 0 && m2 == 0) {
        out[i] = 0;
        *changed = 1;
    } else {
        out[i] = v;
    }
}
