// Shared declarations of the libctsr compute shaders. What C and GLSL agree on (push
// constants, descriptor bindings, specialization-constant ids, enums) is ctsr-abi.h, included
// here.
// Activations are NHWC with the channel count padded to a multiple of 4 and are read and
// written as vec4. With -DCTSR_FP16=1 they are stored as f16vec4 (arithmetic stays fp32).
#include "ctsr-abi.h"

#if CTSR_FP16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ACT_T f16vec4
#define TO_ACT(v) f16vec4(v)
#else
#define ACT_T vec4
#define TO_ACT(v) (v)
#endif

vec4 activate(vec4 v, int act)
{
    if (act == CTSR_ACT_RELU)
        return max(v, vec4(0.0));
    if (act == CTSR_ACT_LRELU)
        return max(v, vec4(0.0)) + CTSR_LRELU_SLOPE * min(v, vec4(0.0));
    if (act == CTSR_ACT_SILU)
        return v / (1.0 + exp(-v));
    if (act == CTSR_ACT_GELU) {
        // tanh approximation; tanh(u) = 1 - 2 / (exp(2u) + 1), safe for large |u|
        vec4 u = 0.7978845608 * (v + 0.044715 * v * v * v);
        return 0.5 * v * (2.0 - 2.0 / (exp(2.0 * u) + 1.0));
    }
    return v;
}

#if CTSR_YUV
// Y'CbCr <-> R'G'B' for the YUV frame formats. kr, kb: luma coefficients of the matrix;
// limited range: Y' 16..235, Cb Cr 16..240 (of 255); full range: 0..255. R'G'B' in [0, 1].

// codes (0..255) -> R'G'B', clamped to [0, 1]
vec3 yuv_to_rgb(vec3 c, float kr, float kb, bool full)
{
    const float y = full ? c.x / 255.0 : (c.x - 16.0) / 219.0;
    const float cs = full ? 255.0 : 224.0;
    const float cb = (c.y - 128.0) / cs, cr = (c.z - 128.0) / cs;
    const float r = y + 2.0 * (1.0 - kr) * cr;
    const float b = y + 2.0 * (1.0 - kb) * cb;
    const float g = (y - kr * r - kb * b) / (1.0 - kr - kb);
    return clamp(vec3(r, g, b), 0.0, 1.0);
}

// R'G'B' -> codes (unrounded, unclamped)
vec3 rgb_to_yuv(vec3 rgb, float kr, float kb, bool full)
{
    const float y = kr * rgb.r + (1.0 - kr - kb) * rgb.g + kb * rgb.b;
    const float cb = (rgb.b - y) / (2.0 * (1.0 - kb)), cr = (rgb.r - y) / (2.0 * (1.0 - kr));
    return full ? vec3(255.0 * y, 128.0 + 255.0 * cb, 128.0 + 255.0 * cr)
                : vec3(16.0 + 219.0 * y, 128.0 + 224.0 * cb, 128.0 + 224.0 * cr);
}
#endif
