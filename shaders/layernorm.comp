#version 450
// LayerNorm over the channels of each pixel (biased variance, eps 1e-5), one pixel per
// invocation. gamma at woff, beta at boff (floats).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = CTSR_SPEC_WG, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = CTSR_SPEC_LN_C4) const int C4 = 8;

layout(std430, binding = CTSR_BINDING_IN) readonly buffer In { ACT_T x[]; };
layout(std430, binding = CTSR_BINDING_OUT) writeonly buffer Out { ACT_T y[]; };
layout(std430, binding = CTSR_BINDING_WEIGHTS) readonly buffer Weights { vec4 wt[]; };

layout(push_constant) uniform PC { CTSR_PC_LN } pc; // woff, boff: gamma, beta

void main()
{
    const int p = int(gl_GlobalInvocationID.x);
    if (p >= pc.width * pc.height)
        return;
    vec4 s = vec4(0.0);
    for (int c = 0; c < C4; c++)
        s += vec4(x[p * C4 + c]);
    const float mean = (s.x + s.y + s.z + s.w) / float(C4 * 4);
    vec4 q = vec4(0.0);
    for (int c = 0; c < C4; c++) {
        const vec4 d = vec4(x[p * C4 + c]) - mean;
        q += d * d;
    }
    const float rstd = inversesqrt((q.x + q.y + q.z + q.w) / float(C4 * 4) + CTSR_LN_EPS);
    for (int c = 0; c < C4; c++) {
        const vec4 d = (vec4(x[p * C4 + c]) - mean) * rstd;
        y[p * C4 + c] = TO_ACT(d * wt[pc.woff / 4 + c] + wt[pc.boff / 4 + c]);
    }
}
