#version 450
// Window self-attention. Input: qkv [H][W][3C] with channels [q | k | v], heads as contiguous
// groups of D = C/HEADS channels. Output [H][W][C]. Each pixel attends to the pixels of its own
// WIN x WIN cell of a grid anchored at (0, 0), clipped to the region (the edge rule of
// training/ctsr/student.py). One query pixel per invocation, online softmax over the keys.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const int C4 = 8;    // C / 4
layout(constant_id = 2) const int HEADS = 2;
layout(constant_id = 3) const int WIN = 8;

layout(std430, binding = 0) readonly buffer In { ACT_T qkv[]; };
layout(std430, binding = 1) writeonly buffer Out { ACT_T y[]; };

layout(push_constant) uniform PC {
    int width, height;
} pc;

const int D4 = C4 / HEADS;

void main()
{
    const int p = int(gl_GlobalInvocationID.x);
    if (p >= pc.width * pc.height)
        return;
    const int px = p % pc.width, py = p / pc.width;
    const int wx0 = px - px % WIN, wy0 = py - py % WIN;
    const int wx1 = min(wx0 + WIN, pc.width), wy1 = min(wy0 + WIN, pc.height);
    const float scale = inversesqrt(float(D4 * 4));
    for (int h = 0; h < HEADS; h++) {
        vec4 q[D4], acc[D4];
        for (int i = 0; i < D4; i++) {
            q[i] = vec4(qkv[p * 3 * C4 + h * D4 + i]) * scale;
            acc[i] = vec4(0.0);
        }
        float m = -1e30, l = 0.0;
        for (int ky = wy0; ky < wy1; ky++) {
            for (int kx = wx0; kx < wx1; kx++) {
                const int kb = (ky * pc.width + kx) * 3 * C4;
                vec4 s4 = vec4(0.0);
                for (int i = 0; i < D4; i++)
                    s4 += q[i] * vec4(qkv[kb + C4 + h * D4 + i]);
                const float s = s4.x + s4.y + s4.z + s4.w;
                const float mn = max(m, s);
                const float corr = exp(m - mn);
                const float e = exp(s - mn);
                l = l * corr + e;
                for (int i = 0; i < D4; i++)
                    acc[i] = acc[i] * corr + e * vec4(qkv[kb + 2 * C4 + h * D4 + i]);
                m = mn;
            }
        }
        for (int i = 0; i < D4; i++)
            y[p * C4 + h * D4 + i] = TO_ACT(acc[i] / l);
    }
}
