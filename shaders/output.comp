#version 450
// Tail: pixel shuffle of the tail conv output (3*S*S channels) plus a bilinear
// (align_corners = False) upsample of the input tile, clamped to [0, 1], written into the
// output frame. Covers the output pixels of the tile's interior only.
// FORMAT 0: RGBA8 (alpha upsampled bilinearly), FORMAT 1: float RGB.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const int FORMAT = 0;
layout(constant_id = 2) const int S = 2;
layout(constant_id = 3) const int TAIL4 = 3; // tail channel stride / 4

layout(std430, binding = 0) readonly buffer Tail { ACT_T tailv[]; };
layout(std430, binding = 1) writeonly buffer Frame { uint frame[]; };
layout(std430, binding = 2) readonly buffer Img { ACT_T img[]; };

layout(push_constant) uniform PC {
    int width, height;   // tile region (input pixels)
    int ix0, iy0;        // interior origin relative to the region (input pixels)
    int iw, ih;          // interior size (input pixels)
    int fx0, fy0;        // interior origin in the frame (input pixels)
    int fw;              // output frame width (output pixels)
} pc;

float tail_at(int pix, int c)
{
    return float(tailv[pix * TAIL4 + c / 4][c % 4]);
}

void main()
{
    const int ox = int(gl_GlobalInvocationID.x), oy = int(gl_GlobalInvocationID.y);
    if (ox >= pc.iw * S || oy >= pc.ih * S)
        return;
    // output pixel in region coordinates
    const int rx = pc.ix0 * S + ox, ry = pc.iy0 * S + oy;
    const int lx = rx / S, ly = ry / S, sub = (ry % S) * S + rx % S;
    const int lp = ly * pc.width + lx;
    const float fx = max((float(rx) + 0.5) / float(S) - 0.5, 0.0);
    const float fy = max((float(ry) + 0.5) / float(S) - 0.5, 0.0);
    const int x0 = int(fx), y0 = int(fy);
    const int x1 = min(x0 + 1, pc.width - 1), y1 = min(y0 + 1, pc.height - 1);
    const float ax = fx - float(x0), ay = fy - float(y0);
    const vec4 top = mix(vec4(img[y0 * pc.width + x0]), vec4(img[y0 * pc.width + x1]), ax);
    const vec4 bot = mix(vec4(img[y1 * pc.width + x0]), vec4(img[y1 * pc.width + x1]), ax);
    const vec4 up = mix(top, bot, ay);
    vec3 rgb = vec3(tail_at(lp, sub), tail_at(lp, S * S + sub), tail_at(lp, 2 * S * S + sub));
    rgb = clamp(rgb + up.rgb, 0.0, 1.0);
    const int fo = (pc.fy0 * S + oy) * pc.fw + pc.fx0 * S + ox;
    if (FORMAT == 0) {
        frame[fo] = packUnorm4x8(vec4(rgb, clamp(up.a, 0.0, 1.0)));
    } else {
        frame[fo * 3] = floatBitsToUint(rgb.r);
        frame[fo * 3 + 1] = floatBitsToUint(rgb.g);
        frame[fo * 3 + 2] = floatBitsToUint(rgb.b);
    }
}
