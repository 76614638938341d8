#version 450
// Window self-attention. Input: qkv [H][W][3C] with channels [q | k | v], heads as contiguous
// groups of D = C/HEADS channels. Output [H][W][C]. Each pixel attends to the pixels of its own
// WIN x WIN cell of a grid anchored at (0, 0), clipped to the region (the edge rule of
// training/ctsr/student.py). QY query pixels per invocation, online softmax over keys.
//
// SHARED_KEYS (subgroups of 8 lanes = 8 neighbouring pixels of one window row, WIN % 8 == 0,
// 2*D/4 <= 8): every lane of a subgroup walks the same keys, so each lane fetches one texel of
// the current key's k or v and subgroupShuffle hands them to all lanes: one fetch per key
// instead of 2*D/4 per lane. Otherwise each lane reads its keys itself.
//
// QY > 1 (a divisor of WIN): each invocation answers QY queries of one column of a window,
// rows r + j * WIN/QY of it (invocation row iy: window iy / (WIN/QY), r = iy % (WIN/QY)), so
// every key is loaded, shuffled and walked once for all of them.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#extension GL_KHR_shader_subgroup_shuffle : enable
#extension GL_KHR_shader_subgroup_basic : enable

layout(local_size_x_id = CTSR_SPEC_WG, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = CTSR_SPEC_WATTN_C4) const int C4 = 8;    // C / 4
layout(constant_id = CTSR_SPEC_WATTN_HEADS) const int HEADS = 2;
layout(constant_id = CTSR_SPEC_WATTN_WIN) const int WIN = 8;
layout(constant_id = CTSR_SPEC_WATTN_SHARED_KEYS) const bool SHARED_KEYS = false;
layout(constant_id = CTSR_SPEC_WATTN_QY) const int QY = 1;

layout(std430, binding = CTSR_BINDING_OUT) writeonly buffer Out { ACT_T y[]; };
// the input (binding 0's memory) as vec4 texels, read with imageLoad: on lavapipe an inline
// gather, where texelFetch is a call into a helper with the live registers spilled around it
// and SSBO loads are scalarised
#if CTSR_FP16
layout(binding = CTSR_BINDING_IN_IMAGE, rgba16f) uniform readonly imageBuffer qkvt;
#else
layout(binding = CTSR_BINDING_IN_IMAGE, rgba32f) uniform readonly imageBuffer qkvt;
#endif

layout(push_constant) uniform PC { CTSR_PC_WATTN } pc;

const int D4 = C4 / HEADS;

void main()
{
    const int px = int(gl_GlobalInvocationID.x), iy = int(gl_GlobalInvocationID.y);
    // the query rows: rows r + j * WIN/QY (j < QY) of window iy / (WIN/QY), r = iy % (WIN/QY)
    const int hw = WIN / QY;
    const int py0 = iy / hw * WIN + iy % hw;
    if (py0 >= pc.height) // the whole subgroup (one row of invocations) leaves together
        return;
    int rows[QY];
    for (int j = 0; j < QY; j++)
        rows[j] = min(py0 + j * hw, pc.height - 1); // clamped: the same window, not stored
    // lanes past the right edge still walk the keys (they take part in the shuffles)
    const int cx = min(px, pc.width - 1);
    const int wx0 = cx - cx % WIN, wy0 = py0 - py0 % WIN;
    const int wx1 = min(wx0 + WIN, pc.width), wy1 = min(wy0 + WIN, pc.height);
    const float scale = inversesqrt(float(D4 * 4));
    const int lane = SHARED_KEYS ? int(gl_SubgroupInvocationID) : 0;
    for (int h = 0; h < HEADS; h++) {
        vec4 q[QY][D4], acc[QY][D4];
        float m[QY], l[QY];
        for (int j = 0; j < QY; j++) {
            const int p = rows[j] * pc.width + cx;
            for (int i = 0; i < D4; i++) {
                q[j][i] = imageLoad(qkvt, p * 3 * C4 + h * D4 + i) * scale;
                acc[j][i] = vec4(0.0);
            }
            m[j] = -1e30;
            l[j] = 0.0;
        }
        // lane l < D4 fetches k texel l, lane D4 + l fetches v texel l
        const int off = lane < D4 ? C4 + h * D4 + lane : 2 * C4 + h * D4 + lane - D4;
        for (int ky = wy0; ky < wy1; ky++) {
            for (int kx = wx0; kx < wx1; kx++) {
                const int kb = (ky * pc.width + kx) * 3 * C4;
                vec4 k[D4], v[D4];
                if (SHARED_KEYS) {
                    const vec4 t = imageLoad(qkvt, kb + off);
                    for (int i = 0; i < D4; i++) {
                        k[i] = subgroupShuffle(t, i);
                        v[i] = subgroupShuffle(t, D4 + i);
                    }
                } else {
                    for (int i = 0; i < D4; i++) {
                        k[i] = imageLoad(qkvt, kb + C4 + h * D4 + i);
                        v[i] = imageLoad(qkvt, kb + 2 * C4 + h * D4 + i);
                    }
                }
                for (int j = 0; j < QY; j++) {
                    float s = 0.0;
                    for (int i = 0; i < D4; i++)
                        s += dot(q[j][i], k[i]);
                    // one exp per key: of exp(m - max(m, s)) and exp(s - max(m, s)) one is 1,
                    // the other exp(-|s - m|)
                    const float x = exp(-abs(s - m[j]));
                    const bool up = s > m[j];
                    const float corr = up ? x : 1.0;
                    const float e = up ? 1.0 : x;
                    l[j] = l[j] * corr + e;
                    for (int i = 0; i < D4; i++)
                        acc[j][i] = acc[j][i] * corr + e * v[i];
                    m[j] = max(m[j], s);
                }
            }
        }
        if (px < pc.width)
            for (int j = 0; j < QY; j++) {
                if (py0 + j * hw >= pc.height)
                    break;
                const int p = rows[j] * pc.width + cx;
                for (int i = 0; i < D4; i++)
                    y[p * C4 + h * D4 + i] = TO_ACT(acc[j][i] / l[j]);
            }
    }
}
