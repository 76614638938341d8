#version 450
// Tail: pixel shuffle of the tail conv output (3*S*S channels) plus a bilinear
// (align_corners = False) upsample of the input tile, clamped to [0, 1], written into the
// output frame. Covers the output pixels of the tile's interior only.
// FORMAT (CTSR_FMT_*): RGBA8 (alpha upsampled bilinearly), RGB_F32.
// Built with -DCTSR_YUV=1 (needs 8-bit storage): I420, NV12 (planes
// tightly packed as in unpack.comp). One invocation per 2x2 block of output pixels (the
// interior starts at even output coordinates): it writes the block's Y bytes and its chroma
// sample, computed from the RGB of the block (centred siting: 2x2 average) or with 1-2-1
// weights over the neighbours along a cosited axis; pixels outside the frame clamp.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = CTSR_SPEC_WG, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = CTSR_SPEC_OUTPUT_FORMAT) const int FORMAT = 0;
layout(constant_id = CTSR_SPEC_OUTPUT_S) const int S = 2;
layout(constant_id = CTSR_SPEC_OUTPUT_TAIL4) const int TAIL4 = 3; // tail channel stride / 4

#if CTSR_YUV
#extension GL_EXT_shader_8bit_storage : require
layout(std430, binding = CTSR_BINDING_OUT) writeonly buffer Frame { uint8_t frame[]; };
#else
layout(std430, binding = CTSR_BINDING_OUT) writeonly buffer Frame { uint frame[]; };
#endif
// The tail conv output (binding 0's memory) and the bilinear image (binding 2's) read as vec4
// texels through storage texel views: binding 7, and binding 8 (the output's view, which a
// dispatch writing a frame takes from binding 2). On lavapipe imageLoad is an inline gather;
// SSBO loads are scalarised lane by lane.
#if CTSR_FP16
layout(binding = CTSR_BINDING_IN_IMAGE, rgba16f) uniform readonly imageBuffer tailt;
layout(binding = CTSR_BINDING_OUT_IMAGE, rgba16f) uniform readonly imageBuffer imgt;
#else
layout(binding = CTSR_BINDING_IN_IMAGE, rgba32f) uniform readonly imageBuffer tailt;
layout(binding = CTSR_BINDING_OUT_IMAGE, rgba32f) uniform readonly imageBuffer imgt;
#endif

layout(push_constant) uniform PC {
    CTSR_PC_OUTPUT // region size; interior origin in the region, size, origin in the frame;
                   // output frame width
#if CTSR_YUV
    CTSR_PC_OUTPUT_YUV // output frame height; kr, kb, flags (CTSR_YUV_FLAG_*)
#endif
} pc;

// The output pixel (rx, ry) in region coordinates (output pixels): RGB clamped to [0, 1],
// alpha the bilinear upsample (unclamped).
vec4 pixel_at(int rx, int ry)
{
    const int lx = rx / S, ly = ry / S, sub = (ry % S) * S + rx % S;
    const int lp = ly * pc.width + lx;
    const float fx = max((float(rx) + 0.5) / float(S) - 0.5, 0.0);
    const float fy = max((float(ry) + 0.5) / float(S) - 0.5, 0.0);
    const int x0 = int(fx), y0 = int(fy);
    const int x1 = min(x0 + 1, pc.width - 1), y1 = min(y0 + 1, pc.height - 1);
    const float ax = fx - float(x0), ay = fy - float(y0);
    const int r0 = y0 * pc.width, r1 = y1 * pc.width;
    const vec4 top = mix(imageLoad(imgt, r0 + x0), imageLoad(imgt, r0 + x1), ax);
    const vec4 bot = mix(imageLoad(imgt, r1 + x0), imageLoad(imgt, r1 + x1), ax);
    const vec4 up = mix(top, bot, ay);
    // channel c of the tail: texel c / 4, component c % 4
    vec3 rgb;
    for (int k = 0; k < 3; k++) {
        const int c = k * S * S + sub;
        rgb[k] = imageLoad(tailt, lp * TAIL4 + c / 4)[c % 4];
    }
    rgb = clamp(rgb + up.rgb, 0.0, 1.0);
    return vec4(rgb, up.a);
}

#if CTSR_YUV
uint to_code(float v) { return uint(clamp(floor(v + 0.5), 0.0, 255.0)); }

void main()
{
    const int bx = int(gl_GlobalInvocationID.x), by = int(gl_GlobalInvocationID.y);
    if (2 * bx >= pc.iw * S || 2 * by >= pc.ih * S)
        return;
    const int fh = pc.fh, fw = pc.fw;
    // the block's top-left pixel in the frame, and the region's origin (output pixels)
    const int X0 = pc.fx0 * S + 2 * bx, Y0 = pc.fy0 * S + 2 * by;
    const int ox = (pc.fx0 - pc.ix0) * S, oy = (pc.fy0 - pc.iy0) * S;
    const bool full = (pc.flags & CTSR_YUV_FLAG_FULL_RANGE) != 0;
    const bool cos_h = (pc.flags & CTSR_YUV_FLAG_COSITED_H) != 0, cos_v = (pc.flags & CTSR_YUV_FLAG_COSITED_V) != 0;
    // RGB of the pixels at offsets -1..1 (clamped to the frame) around the block's corner
    vec3 c[3][3];
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) {
            c[j][i] = vec3(0.0);
            if ((j == 0 && !cos_v) || (i == 0 && !cos_h))
                continue;
            const int x = clamp(X0 + i - 1, 0, fw - 1), y = clamp(Y0 + j - 1, 0, fh - 1);
            c[j][i] = pixel_at(x - ox, y - oy).rgb;
        }
    // luma of the block's pixels inside the frame
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 2; i++)
            if (X0 + i < fw && Y0 + j < fh)
                frame[(Y0 + j) * fw + X0 + i] = uint8_t(to_code(rgb_to_yuv(c[j + 1][i + 1], pc.kr, pc.kb, full).x));
    // chroma: weights along each axis for the offsets -1, 0, 1
    const vec3 wx = cos_h ? vec3(0.25, 0.5, 0.25) : vec3(0.0, 0.5, 0.5);
    const vec3 wy = cos_v ? vec3(0.25, 0.5, 0.25) : vec3(0.0, 0.5, 0.5);
    vec3 avg = vec3(0.0);
    for (int j = 0; j < 3; j++)
        avg += wy[j] * (wx[0] * c[j][0] + wx[1] * c[j][1] + wx[2] * c[j][2]);
    const vec3 yuv = rgb_to_yuv(avg, pc.kr, pc.kb, full);
    const int cw = (fw + 1) / 2, ch = (fh + 1) / 2, ysize = fw * fh;
    const int ci = (Y0 / 2) * cw + X0 / 2;
    if (FORMAT == CTSR_FMT_I420) {
        frame[ysize + ci] = uint8_t(to_code(yuv.y));
        frame[ysize + cw * ch + ci] = uint8_t(to_code(yuv.z));
    } else {
        frame[ysize + 2 * ci] = uint8_t(to_code(yuv.y));
        frame[ysize + 2 * ci + 1] = uint8_t(to_code(yuv.z));
    }
}
#else
void main()
{
    const int ox = int(gl_GlobalInvocationID.x), oy = int(gl_GlobalInvocationID.y);
    if (ox >= pc.iw * S || oy >= pc.ih * S)
        return;
    // output pixel in region coordinates
    const vec4 v = pixel_at(pc.ix0 * S + ox, pc.iy0 * S + oy);
    const vec3 rgb = v.rgb;
    const int fo = (pc.fy0 * S + oy) * pc.fw + pc.fx0 * S + ox;
    if (FORMAT == CTSR_FMT_RGBA8) {
        frame[fo] = packUnorm4x8(vec4(rgb, clamp(v.a, 0.0, 1.0)));
    } else {
        frame[fo * 3] = floatBitsToUint(rgb.r);
        frame[fo * 3 + 1] = floatBitsToUint(rgb.g);
        frame[fo * 3 + 2] = floatBitsToUint(rgb.b);
    }
}
#endif
