#version 450
// Frame -> tile: reads the region (ox, oy, width x height) of a tightly packed frame and
// writes an RGBA float tile [height][width] (vec4; alpha = 1 for RGB input).
// FORMAT 0: RGBA8 (one uint per pixel), FORMAT 1: float RGB (3 floats per pixel).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 1) const int FORMAT = 0;

layout(std430, binding = 0) readonly buffer Frame { uint frame[]; };
layout(std430, binding = 1) writeonly buffer Tile { ACT_T tile[]; };

layout(push_constant) uniform PC {
    int width, height;  // region
    int ox, oy;         // region origin in the frame
    int fw, fh;         // frame size
} pc;

void main()
{
    const int x = int(gl_GlobalInvocationID.x), y = int(gl_GlobalInvocationID.y);
    if (x >= pc.width || y >= pc.height)
        return;
    const int fp = (pc.oy + y) * pc.fw + pc.ox + x;
    vec4 v;
    if (FORMAT == 0) {
        v = unpackUnorm4x8(frame[fp]);
    } else {
        v = vec4(uintBitsToFloat(frame[fp * 3]), uintBitsToFloat(frame[fp * 3 + 1]),
                 uintBitsToFloat(frame[fp * 3 + 2]), 1.0);
    }
    tile[y * pc.width + x] = TO_ACT(v);
}
