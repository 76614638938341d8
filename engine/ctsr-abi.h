/* What libctsr's C code and its GLSL compute shaders must agree on, written once and included
 * by both (the shaders through common.glsl, compiled with glslang -I engine/; the C code
 * through config.h and optable.h), so that the two sides cannot disagree on a push-constant
 * layout, a descriptor binding, a specialization-constant id or an enum value.
 *
 * glslang defines VULKAN when it compiles for Vulkan (-V); C sees the same member lists as
 * structs of int32_t and float, with _Static_assert on their size (no padding: GLSL lays out
 * a push-constant block of 4-byte scalars at consecutive offsets too) and on the limit of the
 * pipeline layout's push-constant range. Keep this file to what both languages parse: #define,
 * #if, and comments. */
#ifndef CTSR_ABI_H
#define CTSR_ABI_H

#ifdef VULKAN
#define CTSR_I32 int
#else
#include <stddef.h>
#include <stdint.h>
#define CTSR_I32 int32_t
#endif

/* ---- enums ---- */

/* activations: the config's act, the convolution's ACT specialization constant */
#define CTSR_ACT_NONE 0
#define CTSR_ACT_RELU 1
#define CTSR_ACT_LRELU 2
#define CTSR_ACT_SILU 3
#define CTSR_ACT_GELU 4
#define CTSR_LRELU_SLOPE 0.1f /* LeakyReLU: x < 0 -> slope * x */
#define CTSR_LN_EPS 1e-5f     /* LayerNorm: added to the (biased) variance */

/* convolution modes (MODE specialization constant; conv.comp) */
#define CTSR_CONV_ACT 0      /* out = act(conv(in)) */
#define CTSR_CONV_FILM 1     /* out += FiLM(conv(in)), FiLM vectors per block */
#define CTSR_CONV_RESIDUAL 2 /* out += conv(in) */
#define CTSR_CONV_FILM_MAP 3 /* out += FiLM(conv(in)), FiLM per pixel (timestep map) */
#define CTSR_CONV_LN 4       /* out = act(conv(LayerNorm(in))), 1x1 only, input channels a
                              * multiple of 4: LayerNorm's gamma and beta folded into the
                              * weights and bias when they are packed (ctsr_pack_conv_ln), each
                              * pixel's mean and variance computed in the shader */

/* frame formats (FORMAT specialization constant of unpack and output); I420 and NV12 are
 * the shaders built with -DCTSR_YUV=1 (8-bit storage) */
#define CTSR_FMT_RGBA8 0
#define CTSR_FMT_RGB_F32 1
#define CTSR_FMT_I420 2
#define CTSR_FMT_NV12 3
#define CTSR_FMT_COUNT 4

/* flags of the YUV shaders' push constants (unpack and output, CTSR_YUV) */
#define CTSR_YUV_FLAG_FULL_RANGE 1 /* Y' Cb Cr 0..255, else limited (16..235, 16..240) */
#define CTSR_YUV_FLAG_COSITED_H 2  /* chroma sited with the even luma columns, else centred */
#define CTSR_YUV_FLAG_COSITED_V 4  /* chroma sited with the even luma rows, else centred */

/* ---- descriptor bindings (set 0: one layout for every shader) ---- */

/* storage buffers 0..CTSR_BINDINGS-1 */
#define CTSR_BINDING_IN 0      /* the input: activations, or the frame (unpack) */
#define CTSR_BINDING_OUT 1     /* the output: activations (read too by convolution modes 1-3),
                                * or the frame (output) */
#define CTSR_BINDING_WEIGHTS 2 /* packed weights (output.comp: the bilinear image) */
#define CTSR_BINDING_FILM 3    /* FiLM vectors; with a timestep map also the levels' table and
                                * the level positions */
#define CTSR_BINDINGS 4
/* uniform texel buffers (vec4 texels, samplerBuffer) over the memory of bindings 0, 2, 3 */
#define CTSR_BINDING_IN_TEXELS 4     /* binding 0's (no shader reads it now: see 7) */
#define CTSR_BINDING_WEIGHT_TEXELS 5 /* binding 2's, RGBA32F */
#define CTSR_BINDING_FILM_TEXELS 6   /* the start of binding 3's, RGBA32F: the FiLM vectors and
                                      * the levels' table */
#define CTSR_TEXEL_BINDINGS 3
/* storage texel buffers (vec4 texels, imageBuffer, read only) over the memory of bindings 0
 * and 1: the convolution's, window attention's and output.comp's input (the tail), the
 * convolution's output's previous values; where binding 1 is a frame (output.comp), binding
 * 8 is over binding 2's memory instead (output.comp's bilinear image). On lavapipe imageLoad
 * is an inline gather, cheaper than texelFetch (a call into a helper, live registers spilled
 * around it) and much cheaper than scalarised SSBO loads. */
#define CTSR_BINDING_IN_IMAGE 7
#define CTSR_BINDING_OUT_IMAGE 8
#define CTSR_IMAGE_BINDINGS 2
/* (the texel and image bindings follow the storage buffers without gaps: bindings
 * 0 .. CTSR_BINDINGS + CTSR_TEXEL_BINDINGS + CTSR_IMAGE_BINDINGS - 1) */

/* ---- specialization constants (ids) ---- */

#define CTSR_SPEC_WG 0 /* every shader: workgroup size (local_size_x_id) */
/* conv.comp */
#define CTSR_SPEC_CONV_CIN4 1  /* input channels / 4 (padded) */
#define CTSR_SPEC_CONV_COUT4 2 /* output channels / 4 (padded) */
#define CTSR_SPEC_CONV_KS 3    /* kernel size (the shader is built per size: -DKS) */
#define CTSR_SPEC_CONV_ACT 4   /* CTSR_ACT_* (CTSR_CONV_ACT) */
#define CTSR_SPEC_CONV_MODE 5  /* CTSR_CONV_* */
#define CTSR_SPEC_CONV_SHUFFLE 6 /* subgroup shuffle (built per variant; keys the pipeline) */
#define CTSR_SPEC_CONV_OCW 7     /* output channels per invocation: 8, 12 or 16 */
#define CTSR_SPEC_CONV_COUNT 8
/* layernorm.comp */
#define CTSR_SPEC_LN_C4 1 /* channels / 4 */
#define CTSR_SPEC_LN_COUNT 2
/* wattn.comp */
#define CTSR_SPEC_WATTN_C4 1          /* channels / 4 */
#define CTSR_SPEC_WATTN_HEADS 2
#define CTSR_SPEC_WATTN_WIN 3         /* window edge */
#define CTSR_SPEC_WATTN_SHARED_KEYS 4 /* keys shared across a subgroup (bool) */
#define CTSR_SPEC_WATTN_QY 5          /* query rows per invocation (a divisor of WIN) */
#define CTSR_SPEC_WATTN_COUNT 6
/* unpack.comp */
#define CTSR_SPEC_UNPACK_FORMAT 1 /* CTSR_FMT_* */
#define CTSR_SPEC_UNPACK_COUNT 2
/* output.comp */
#define CTSR_SPEC_OUTPUT_FORMAT 1 /* CTSR_FMT_* */
#define CTSR_SPEC_OUTPUT_S 2      /* scale */
#define CTSR_SPEC_OUTPUT_TAIL4 3  /* tail channel stride / 4 */
#define CTSR_SPEC_OUTPUT_COUNT 4

/* ---- push constants (member lists; GLSL: layout(push_constant) uniform PC { ... } pc) ---- */

#define CTSR_PUSH_BYTES 64 /* the pipeline layout's push-constant range */

/* conv.comp: region size in pixels; weight and bias offsets in floats (the bias offset a
 * multiple of 4: read as a texel); FiLM offset in floats, a multiple of 4 (gamma at foff,
 * beta at foff + COUT4 * 4, read as texels); CTSR_CONV_FILM_MAP: level stride, level
 * positions at moff with row stride mstride (frame pixels), region origin rx, ry */
#define CTSR_PC_CONV                                                                          \
    CTSR_I32 width; CTSR_I32 height;                                                          \
    CTSR_I32 woff; CTSR_I32 boff;                                                             \
    CTSR_I32 foff;                                                                            \
    CTSR_I32 lstride; CTSR_I32 moff; CTSR_I32 mstride; CTSR_I32 rx; CTSR_I32 ry;

/* layernorm.comp: region size; gamma and beta offsets in floats (multiples of 4) */
#define CTSR_PC_LN                                                                            \
    CTSR_I32 width; CTSR_I32 height;                                                          \
    CTSR_I32 woff; CTSR_I32 boff;

/* wattn.comp: region size */
#define CTSR_PC_WATTN CTSR_I32 width; CTSR_I32 height;

/* the YUV shaders' colour: luma coefficients of the matrix, CTSR_YUV_FLAG_* */
#define CTSR_PC_YUV_COLOUR float kr; float kb; CTSR_I32 flags;

/* unpack.comp: region size; region origin in the frame; frame size (input pixels); the YUV
 * build adds CTSR_PC_YUV_COLOUR */
#define CTSR_PC_UNPACK                                                                        \
    CTSR_I32 width; CTSR_I32 height;                                                          \
    CTSR_I32 ox; CTSR_I32 oy;                                                                 \
    CTSR_I32 fw; CTSR_I32 fh;

/* output.comp: tile region size, interior origin relative to the region, interior size,
 * interior origin in the frame (input pixels); output frame width (output pixels); the YUV
 * build adds CTSR_PC_OUTPUT_YUV: output frame height (output pixels) and the colour */
#define CTSR_PC_OUTPUT                                                                        \
    CTSR_I32 width; CTSR_I32 height;                                                          \
    CTSR_I32 ix0; CTSR_I32 iy0;                                                               \
    CTSR_I32 iw; CTSR_I32 ih;                                                                 \
    CTSR_I32 fx0; CTSR_I32 fy0;                                                               \
    CTSR_I32 fw;
#define CTSR_PC_OUTPUT_YUV CTSR_I32 fh; CTSR_PC_YUV_COLOUR

#ifndef VULKAN
/* C: the push constants of each shader (the YUV members included; the RGB builds of unpack
 * and output read a prefix) */
typedef struct ctsr_pc_conv { CTSR_PC_CONV } ctsr_pc_conv;
typedef struct ctsr_pc_ln { CTSR_PC_LN } ctsr_pc_ln;
typedef struct ctsr_pc_wattn { CTSR_PC_WATTN } ctsr_pc_wattn;
typedef struct ctsr_pc_unpack { CTSR_PC_UNPACK CTSR_PC_YUV_COLOUR } ctsr_pc_unpack;
typedef struct ctsr_pc_output { CTSR_PC_OUTPUT CTSR_PC_OUTPUT_YUV } ctsr_pc_output;

/* 4-byte members at consecutive offsets, as in the GLSL block, within the range */
#define CTSR_PC_CHECK(type, members, last)                                                    \
    _Static_assert(sizeof(type) == 4 * (members) && offsetof(type, last) == 4 * ((members) - 1) \
                       && sizeof(type) <= CTSR_PUSH_BYTES,                                    \
                   #type ": push constants must be " #members " packed 4-byte members")
CTSR_PC_CHECK(ctsr_pc_conv, 10, ry);
CTSR_PC_CHECK(ctsr_pc_ln, 4, boff);
CTSR_PC_CHECK(ctsr_pc_wattn, 2, height);
CTSR_PC_CHECK(ctsr_pc_unpack, 9, flags);
CTSR_PC_CHECK(ctsr_pc_output, 13, flags);
#undef CTSR_PC_CHECK
_Static_assert(sizeof(float) == 4, "GLSL float is 32 bits");
_Static_assert(CTSR_BINDING_IN_TEXELS == CTSR_BINDINGS &&
                   CTSR_BINDING_IN_IMAGE == CTSR_BINDINGS + CTSR_TEXEL_BINDINGS &&
                   CTSR_BINDING_FILM_TEXELS == CTSR_BINDING_IN_TEXELS + CTSR_TEXEL_BINDINGS - 1 &&
                   CTSR_BINDING_OUT_IMAGE == CTSR_BINDING_IN_IMAGE + CTSR_IMAGE_BINDINGS - 1,
               "descriptor bindings: storage buffers, texel buffers, storage texel buffers, "
               "numbered without gaps");
#endif

#endif
