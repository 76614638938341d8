#version 450
// KS x KS convolution (KS = 1 or 3, zero padding, stride 1), NHWC vec4 activations.
// One invocation computes 4 neighbouring pixels of one row for a group of 8 output channels:
// 32 accumulators in registers, each input vec4 reused for 8 channels and (KS = 3) 3 taps.
// Weights are uniform across the lanes of a subgroup (all lanes share the channel group and
// row): each lane loads one of the 8 weights and subgroupShuffle hands them to all lanes,
// which on lavapipe compiles to permutes instead of per-lane scalar loads.
//
// Weight layout (floats): [ocg][ky][kx][ic (padded to 4)][8], bias [ocg*8 + j].
// MODE 0: out = act(conv + bias)
// MODE 1: out = out + (conv + bias) * (1 + gamma) + beta     (FiLM, residual, in place)
// MODE 2: out = out + conv + bias                              (residual, in place)
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#extension GL_KHR_shader_subgroup_shuffle : enable
#extension GL_KHR_shader_subgroup_basic : enable

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const int CIN4 = 8;      // input channels / 4 (padded)
layout(constant_id = 2) const int COUT4 = 8;     // output channels / 4 (padded), output stride
layout(constant_id = 3) const int KS = 3;
layout(constant_id = 4) const int ACT = 0;
layout(constant_id = 5) const int MODE = 0;
layout(constant_id = 6) const bool SHUFFLE = true;

layout(std430, binding = 0) readonly buffer In { ACT_T x[]; };
layout(std430, binding = 1) buffer Out { ACT_T y[]; };
layout(std430, binding = 2) readonly buffer Weights { float wt[]; };
layout(std430, binding = 3) readonly buffer Film { float film[]; };

layout(push_constant) uniform PC {
    int width, height; // region size in pixels
    int woff, boff;    // weight and bias offsets in floats
    int foff;          // FiLM offset in floats (gamma at foff, beta at foff + COUT4*4)
} pc;

const int PX = 4;
const int R = KS / 2;

float wload(int idx, int lane)
{
    if (SHUFFLE)
        return subgroupShuffle(wt[idx + (gl_SubgroupInvocationID & 7u)], (gl_SubgroupInvocationID & ~7u) + uint(lane));
    return wt[idx + lane];
}

void main()
{
    const int x0 = int(gl_GlobalInvocationID.x) * PX;
    const int yy = int(gl_GlobalInvocationID.y);
    const int ocg = int(gl_GlobalInvocationID.z);
    // Out-of-range lanes still run the loop (their loads are clamped) so that every lane
    // of a subgroup takes part in the shuffles; only their stores are skipped.
    vec4 acc[PX][2];
    for (int p = 0; p < PX; p++) {
        acc[p][0] = vec4(0.0);
        acc[p][1] = vec4(0.0);
    }
    for (int ky = 0; ky < KS; ky++) {
        const int sy = yy + ky - R;
        const bool rowok = sy >= 0 && sy < pc.height;
        const int rowbase = clamp(sy, 0, pc.height - 1) * pc.width;
        for (int c4 = 0; c4 < CIN4; c4++) {
            vec4 v[PX + 2 * R];
            for (int i = 0; i < PX + 2 * R; i++) {
                const int sx = x0 + i - R;
                const bool ok = rowok && sx >= 0 && sx < pc.width;
                const int cx = clamp(sx, 0, pc.width - 1);
                v[i] = vec4(x[(rowbase + cx) * CIN4 + c4]) * (ok ? 1.0 : 0.0);
            }
            for (int kx = 0; kx < KS; kx++) {
                const int wbase = pc.woff + (((ocg * KS + ky) * KS + kx) * CIN4 * 4 + c4 * 4) * 8;
                for (int ic = 0; ic < 4; ic++) {
                    const int wi = wbase + ic * 8;
                    vec4 w0, w1;
                    w0.x = wload(wi, 0); w0.y = wload(wi, 1); w0.z = wload(wi, 2); w0.w = wload(wi, 3);
                    w1.x = wload(wi, 4); w1.y = wload(wi, 5); w1.z = wload(wi, 6); w1.w = wload(wi, 7);
                    for (int p = 0; p < PX; p++) {
                        const float a = v[p + kx][ic];
                        acc[p][0] += a * w0;
                        acc[p][1] += a * w1;
                    }
                }
            }
        }
    }
    if (yy >= pc.height)
        return;
    for (int j = 0; j < 2; j++) {
        const int oc4 = ocg * 2 + j;
        if (oc4 >= COUT4)
            break;
        const int ob = pc.boff + oc4 * 4;
        const vec4 bias = vec4(wt[ob], wt[ob + 1], wt[ob + 2], wt[ob + 3]);
        vec4 g = vec4(0.0), b = vec4(0.0);
        if (MODE == 1) {
            const int fo = pc.foff + oc4 * 4;
            const int fb = fo + COUT4 * 4;
            g = vec4(film[fo], film[fo + 1], film[fo + 2], film[fo + 3]);
            b = vec4(film[fb], film[fb + 1], film[fb + 2], film[fb + 3]);
        }
        for (int p = 0; p < PX; p++) {
            const int xx = x0 + p;
            if (xx >= pc.width)
                break;
            const int o = (yy * pc.width + xx) * COUT4 + oc4;
            vec4 r = acc[p][j] + bias;
            if (MODE == 0)
                r = activate(r, ACT);
            else if (MODE == 1)
                r = vec4(y[o]) + r * (1.0 + g) + b;
            else
                r = vec4(y[o]) + r;
            y[o] = TO_ACT(r);
        }
    }
}
