// Shared declarations of the libctsr compute shaders.
// Activations are NHWC with the channel count padded to a multiple of 4 and are read and
// written as vec4. With -DCTSR_FP16=1 they are stored as f16vec4 (arithmetic stays fp32).
#if CTSR_FP16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ACT_T f16vec4
#define TO_ACT(v) f16vec4(v)
#else
#define ACT_T vec4
#define TO_ACT(v) (v)
#endif

#define ACT_NONE 0
#define ACT_RELU 1
#define ACT_LRELU 2
#define ACT_SILU 3
#define ACT_GELU 4

vec4 activate(vec4 v, int act)
{
    if (act == ACT_RELU)
        return max(v, vec4(0.0));
    if (act == ACT_LRELU)
        return max(v, vec4(0.0)) + 0.1 * min(v, vec4(0.0));
    if (act == ACT_SILU)
        return v / (1.0 + exp(-v));
    if (act == ACT_GELU) {
        // tanh approximation; tanh(u) = 1 - 2 / (exp(2u) + 1), safe for large |u|
        vec4 u = 0.7978845608 * (v + 0.044715 * v * v * v);
        return 0.5 * v * (2.0 - 2.0 / (exp(2.0 * u) + 1.0));
    }
    return v;
}
