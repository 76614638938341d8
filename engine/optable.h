/* libctsr internal: the operator table. Each operator kind (unpack, conv, layernorm, window
 * attention, output) has its shader, its specialization constants, its push constants and its
 * workgroup counts here, once; the network's recorder (run.c) and the single-shader test
 * runner (ops.c) both dispatch through it. The push-constant layouts and the
 * specialization-constant ids are ctsr-abi.h, shared with the shaders. */
#ifndef CTSR_OPTABLE_H
#define CTSR_OPTABLE_H

#include <stdint.h>

#include "ctsr-abi.h"
#include "ctsr.h"
#include "vk.h"

/* operator kinds; the shader variants of K_CONV (kernel size x subgroup shuffle) and the
 * YUV builds of unpack and output follow K_COUNT in ctsr_shaders */
enum { K_UNPACK, K_CONV, K_LN, K_WATTN, K_OUTPUT, K_COUNT };
enum { K_CONV1_SHUFFLE = K_COUNT, K_CONV3_PLAIN, K_CONV1_PLAIN, K_UNPACK_YUV, K_OUTPUT_YUV,
       K_SHADER_COUNT };

typedef struct ctsr_shader_code {
    const uint32_t *spv32, *spv16;
    size_t size32, size16;
} ctsr_shader_code;
/* the SPIR-V of every shader variant, fp32 and fp16 activations (graph.c) */
extern const ctsr_shader_code ctsr_shaders[K_SHADER_COUNT];

/* One operator: what a dispatch computes, whatever the tile. */
typedef struct ctsr_op {
    int kind;                    /* K_UNPACK .. K_OUTPUT */
    int fmt;                     /* K_UNPACK, K_OUTPUT: CTSR_FMT_* */
    const ctsr_yuv *yuv;         /* K_UNPACK, K_OUTPUT with a YUV format: the colorimetry */
    int cin, cout, k, act, mode; /* K_CONV: channels, kernel size, CTSR_ACT_*, CTSR_CONV_* */
    int c, heads, win;           /* K_LN, K_WATTN: channels; K_WATTN: heads and window */
    int scale;                   /* K_OUTPUT */
    int32_t woff, boff;          /* K_CONV: weights, bias; K_LN: gamma, beta (floats) */
    int32_t foff;                /* K_CONV, CTSR_CONV_FILM(_MAP): FiLM vectors (floats) */
    int32_t lstride, moff;       /* CTSR_CONV_FILM_MAP: level stride, level positions */
} ctsr_op;

/* Where a dispatch runs: a tile's region (what is computed) and interior (what the output
 * writes) in a frame of fw x fh input pixels. */
typedef struct ctsr_tile {
    int rx, ry, rw, rh;
    int ix, iy, iw, ih;
    int fw, fh;
} ctsr_tile;

/* the push constants of any shader (CTSR_PUSH_BYTES, all pushed) */
typedef union ctsr_push {
    ctsr_pc_conv conv;
    ctsr_pc_ln ln;
    ctsr_pc_wattn wattn;
    ctsr_pc_unpack unpack;
    ctsr_pc_output output;
    uint8_t bytes[CTSR_PUSH_BYTES];
} ctsr_push;

/* The table, indexed by kind. */
typedef struct ctsr_op_kind {
    const char *name;
    /* the shader variant (index in ctsr_shaders) */
    int (*shader)(const ctsr_context *ctx, const ctsr_op *op);
    /* specialization constants 0..n-1 into spec; returns n (<= CTSR_MAX_SPEC) */
    int (*spec)(const ctsr_context *ctx, const ctsr_op *op, int32_t *spec);
    /* push constants for tile t */
    void (*push)(const ctsr_op *op, const ctsr_tile *t, ctsr_push *pc);
    /* workgroup counts for tile t */
    void (*groups)(const ctsr_context *ctx, const ctsr_op *op, const ctsr_tile *t,
                   uint32_t g[3]);
} ctsr_op_kind;
extern const ctsr_op_kind ctsr_op_kinds[K_COUNT];

#define CTSR_MAX_SPEC 8

/* The operator's shader and specialization constants (n of them into spec[CTSR_MAX_SPEC],
 * the rest zero); returns the shader index. */
int ctsr_op_specialize(const ctsr_context *ctx, const ctsr_op *op, int32_t *spec, int *n);
/* A new pipeline for op (the caller destroys it). */
int ctsr_op_pipeline(ctsr_context *ctx, const ctsr_op *op, VkPipeline *out, char *err,
                     size_t errlen);
/* Records op on tile t into the context's command buffer: binds the pipeline and the
 * descriptor set, pushes the constants, dispatches. */
void ctsr_op_record(ctsr_context *ctx, VkPipeline pipe, VkDescriptorSet set, const ctsr_op *op,
                    const ctsr_tile *t);
/* Points a descriptor set at storage buffers 0..CTSR_BINDINGS-1 (bufs) and at the texel
 * views of bindings CTSR_BINDINGS..CTSR_ALL_BINDINGS-1 (views, in binding order: the uniform
 * texel buffers of the input, the weights and the FiLM vectors; the storage texel buffers of
 * the input and the output). */
void ctsr_write_set(VkDevice dev, VkDescriptorSet set, const VkBuffer bufs[CTSR_BINDINGS],
                    const VkBufferView views[CTSR_VIEW_BINDINGS]);
/* The texel views of a dispatch's set (ctsr_write_set's views), one rule for the network and
 * the single-shader runner: the input's view (binding 0's memory) as both input bindings, the
 * weights', the FiLM vectors' (convolutions in modes 1 and 3), and as the output's storage
 * texel buffer the output's view (convolutions in modes 1-3 read their previous values) or,
 * where the output is a frame buffer (out == VK_NULL_HANDLE), binding 2's: output.comp reads
 * the bilinear image through it. A missing view (a frame buffer's) is stood in for by
 * `spare`, a view no dispatch that lacks one reads. */
void ctsr_set_views(VkBufferView in, VkBufferView weights, VkBufferView film, VkBufferView out,
                    VkBufferView b2, VkBufferView spare, VkBufferView views[CTSR_VIEW_BINDINGS]);

#endif
