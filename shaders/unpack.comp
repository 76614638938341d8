#version 450
// Frame -> tile: reads the region (ox, oy, width x height) of a tightly packed frame and
// writes an RGBA float tile [height][width] (vec4; alpha = 1 for RGB and YUV input).
// FORMAT (CTSR_FMT_*): RGBA8 (one uint per pixel), RGB_F32 (3 floats per pixel).
// Built with -DCTSR_YUV=1 (needs 8-bit storage): I420, NV12, planes
// tightly packed (Y fw x fh, then U and V or interleaved UV, ((fw+1)/2) x ((fh+1)/2)).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = CTSR_SPEC_WG, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = CTSR_SPEC_UNPACK_FORMAT) const int FORMAT = 0;

#if CTSR_YUV
#extension GL_EXT_shader_8bit_storage : require
layout(std430, binding = CTSR_BINDING_IN) readonly buffer Frame { uint8_t frame[]; };
#else
layout(std430, binding = CTSR_BINDING_IN) readonly buffer Frame { uint frame[]; };
#endif
layout(std430, binding = CTSR_BINDING_OUT) writeonly buffer Tile { ACT_T tile[]; };

layout(push_constant) uniform PC {
    CTSR_PC_UNPACK // region size, its origin in the frame, frame size
#if CTSR_YUV
    CTSR_PC_YUV_COLOUR // kr, kb, flags (CTSR_YUV_FLAG_*)
#endif
} pc;

#if CTSR_YUV
float code(int i) { return float(uint(frame[i])); }

// the two chroma samples (of n) around luma position x and the weight of the second
// (chroma sample j lies at luma 2j when cosited, at 2j + 1/2 when centred)
void chroma_lerp(int x, bool cosited, int n, out int i0, out int i1, out float f)
{
    int q = max(cosited ? 2 * x : 2 * x - 1, 0); // in quarters of a chroma sample
    i0 = q >> 2;
    f = float(q & 3) * 0.25;
    if (i0 >= n - 1) {
        i0 = n - 1;
        f = 0.0;
    }
    i1 = min(i0 + 1, n - 1);
}
#endif

void main()
{
    const int x = int(gl_GlobalInvocationID.x), y = int(gl_GlobalInvocationID.y);
    if (x >= pc.width || y >= pc.height)
        return;
    const int fp = (pc.oy + y) * pc.fw + pc.ox + x;
    vec4 v;
#if CTSR_YUV
    {
        const int fx = pc.ox + x, fy = pc.oy + y;
        const int cw = (pc.fw + 1) / 2, ch = (pc.fh + 1) / 2, ysize = pc.fw * pc.fh;
        int c0, c1, r0, r1;
        float ax, ay;
        chroma_lerp(fx, (pc.flags & CTSR_YUV_FLAG_COSITED_H) != 0, cw, c0, c1, ax);
        chroma_lerp(fy, (pc.flags & CTSR_YUV_FLAG_COSITED_V) != 0, ch, r0, r1, ay);
        // byte offsets of U and V sample (0, 0) and the distance between two samples
        const int ub = ysize, vb = FORMAT == CTSR_FMT_I420 ? ysize + cw * ch : ysize + 1;
        const int ps = FORMAT == CTSR_FMT_I420 ? 1 : 2;
        const int i00 = (r0 * cw + c0) * ps, i01 = (r0 * cw + c1) * ps;
        const int i10 = (r1 * cw + c0) * ps, i11 = (r1 * cw + c1) * ps;
        const float u = mix(mix(code(ub + i00), code(ub + i01), ax),
                            mix(code(ub + i10), code(ub + i11), ax), ay);
        const float w = mix(mix(code(vb + i00), code(vb + i01), ax),
                            mix(code(vb + i10), code(vb + i11), ax), ay);
        v = vec4(yuv_to_rgb(vec3(code(fp), u, w), pc.kr, pc.kb, (pc.flags & CTSR_YUV_FLAG_FULL_RANGE) != 0),
                 1.0);
    }
#else
    if (FORMAT == CTSR_FMT_RGBA8) {
        v = unpackUnorm4x8(frame[fp]);
    } else {
        v = vec4(uintBitsToFloat(frame[fp * 3]), uintBitsToFloat(frame[fp * 3 + 1]),
                 uintBitsToFloat(frame[fp * 3 + 2]), 1.0);
    }
#endif
    tile[y * pc.width + x] = TO_ACT(v);
}
