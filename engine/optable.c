/* libctsr: the operator table (optable.h): per operator kind its shader, specialization
 * constants, push constants and workgroup counts; recording one dispatch; a descriptor
 * set's writes. */
#include "optable.h"

#include <string.h>

#include "internal.h"

/* ---- unpack: frame -> RGBA float tile ---- */

static int unpack_shader(const ctsr_context *ctx, const ctsr_op *op)
{
    (void)ctx;
    return op->fmt >= CTSR_FMT_I420 ? K_UNPACK_YUV : K_UNPACK;
}

static int unpack_spec(const ctsr_context *ctx, const ctsr_op *op, int32_t *spec)
{
    spec[CTSR_SPEC_WG] = ctx->wg;
    spec[CTSR_SPEC_UNPACK_FORMAT] = op->fmt;
    return CTSR_SPEC_UNPACK_COUNT;
}

/* the YUV shaders' kr, kb and CTSR_YUV_FLAG_* */
static void yuv_colour(const ctsr_yuv *y, float *kr, float *kb, int32_t *flags)
{
    *kr = (float)y->kr;
    *kb = (float)y->kb;
    *flags = (y->full_range ? CTSR_YUV_FLAG_FULL_RANGE : 0) |
             (y->chroma_cosited_h ? CTSR_YUV_FLAG_COSITED_H : 0) |
             (y->chroma_cosited_v ? CTSR_YUV_FLAG_COSITED_V : 0);
}

static void unpack_push(const ctsr_op *op, const ctsr_tile *t, ctsr_push *pc)
{
    ctsr_pc_unpack *p = &pc->unpack;
    p->width = t->rw;
    p->height = t->rh;
    p->ox = t->rx;
    p->oy = t->ry;
    p->fw = t->fw;
    p->fh = t->fh;
    if (op->fmt >= CTSR_FMT_I420)
        yuv_colour(op->yuv, &p->kr, &p->kb, &p->flags);
}

static void unpack_groups(const ctsr_context *ctx, const ctsr_op *op, const ctsr_tile *t,
                          uint32_t g[3])
{
    (void)op;
    g[0] = (uint32_t)cdiv(t->rw, ctx->wg);
    g[1] = (uint32_t)t->rh;
}

/* ---- convolution ---- */

/* kernel size 3 or 1, with or without subgroup shuffles */
static int conv_shader_of(const ctsr_context *ctx, const ctsr_op *op)
{
    const int shuffle = ctx->vk.subgroup_shuffle;
    return op->k == 3 ? (shuffle ? K_CONV : K_CONV3_PLAIN)
                      : (shuffle ? K_CONV1_SHUFFLE : K_CONV1_PLAIN);
}

static int conv_spec(const ctsr_context *ctx, const ctsr_op *op, int32_t *spec)
{
    spec[CTSR_SPEC_WG] = ctx->wg_conv;
    spec[CTSR_SPEC_CONV_CIN4] = c4(op->cin);
    spec[CTSR_SPEC_CONV_COUT4] = c4(op->cout);
    spec[CTSR_SPEC_CONV_KS] = op->k;
    spec[CTSR_SPEC_CONV_ACT] = op->act;
    spec[CTSR_SPEC_CONV_MODE] = op->mode;
    spec[CTSR_SPEC_CONV_SHUFFLE] = ctx->vk.subgroup_shuffle;
    spec[CTSR_SPEC_CONV_OCW] = ctsr_conv_ocw(op->cout);
    return CTSR_SPEC_CONV_COUNT;
}

static void conv_push(const ctsr_op *op, const ctsr_tile *t, ctsr_push *pc)
{
    ctsr_pc_conv *p = &pc->conv;
    p->width = t->rw;
    p->height = t->rh;
    p->woff = op->woff;
    p->boff = op->boff;
    p->foff = op->foff;
    if (op->mode == CTSR_CONV_FILM_MAP) { /* the level positions of the tile's region */
        p->lstride = op->lstride;
        p->moff = op->moff;
        p->mstride = t->fw;
        p->rx = t->rx;
        p->ry = t->ry;
    }
}

/* 4 pixels of a row and ctsr_conv_ocw(cout) output channels per invocation */
static void conv_groups(const ctsr_context *ctx, const ctsr_op *op, const ctsr_tile *t,
                        uint32_t g[3])
{
    g[0] = (uint32_t)cdiv(cdiv(t->rw, 4), ctx->wg_conv);
    g[1] = (uint32_t)t->rh;
    g[2] = (uint32_t)cdiv(op->cout, ctsr_conv_ocw(op->cout));
}

/* ---- LayerNorm ---- */

static int ln_shader(const ctsr_context *ctx, const ctsr_op *op)
{
    (void)ctx, (void)op;
    return K_LN;
}

static int ln_spec(const ctsr_context *ctx, const ctsr_op *op, int32_t *spec)
{
    spec[CTSR_SPEC_WG] = ctx->wg;
    spec[CTSR_SPEC_LN_C4] = c4(op->c);
    return CTSR_SPEC_LN_COUNT;
}

static void ln_push(const ctsr_op *op, const ctsr_tile *t, ctsr_push *pc)
{
    pc->ln.width = t->rw;
    pc->ln.height = t->rh;
    pc->ln.woff = op->woff;
    pc->ln.boff = op->boff;
}

/* one pixel per invocation */
static void ln_groups(const ctsr_context *ctx, const ctsr_op *op, const ctsr_tile *t,
                      uint32_t g[3])
{
    (void)op;
    g[0] = (uint32_t)cdiv(t->rw * t->rh, ctx->wg);
}

/* ---- window attention ---- */

static int wattn_shader(const ctsr_context *ctx, const ctsr_op *op)
{
    (void)ctx, (void)op;
    return K_WATTN;
}

/* Query rows per invocation, 4, 2 or 1 (the largest that divides WIN): the rows of one window
 * column share every key's loads and shuffles. Measured on lavapipe (ctsr-bench, 640x360, one
 * thread, attention device time against one row per invocation): 2 rows 0.65-0.78, 4 rows
 * 0.54-0.69 (tiny, default), 8 rows no better than 4. */
static int wattn_qy(int win)
{
    return win % 4 == 0 ? 4 : win % 2 == 0 ? 2 : 1;
}

static int wattn_spec(const ctsr_context *ctx, const ctsr_op *op, int32_t *spec)
{
    spec[CTSR_SPEC_WG] = ctx->wg_conv;
    spec[CTSR_SPEC_WATTN_C4] = c4(op->c);
    spec[CTSR_SPEC_WATTN_HEADS] = op->heads;
    spec[CTSR_SPEC_WATTN_WIN] = op->win;
    spec[CTSR_SPEC_WATTN_SHARED_KEYS] = wattn_shared_keys(ctx, c4(op->c) / op->heads, op->win);
    spec[CTSR_SPEC_WATTN_QY] = wattn_qy(op->win);
    return CTSR_SPEC_WATTN_COUNT;
}

static void wattn_push(const ctsr_op *op, const ctsr_tile *t, ctsr_push *pc)
{
    (void)op;
    pc->wattn.width = t->rw;
    pc->wattn.height = t->rh;
}

/* one column per invocation; QY query rows of one window (row pairs r, r + WIN / 2 when
 * QY = 2) in y */
static void wattn_groups(const ctsr_context *ctx, const ctsr_op *op, const ctsr_tile *t,
                         uint32_t g[3])
{
    g[0] = (uint32_t)cdiv(t->rw, ctx->wg_conv);
    g[1] = (uint32_t)(cdiv(t->rh, op->win) * (op->win / wattn_qy(op->win)));
}

/* ---- output: pixel shuffle + bilinear residual -> frame ---- */

static int output_shader(const ctsr_context *ctx, const ctsr_op *op)
{
    (void)ctx;
    return op->fmt >= CTSR_FMT_I420 ? K_OUTPUT_YUV : K_OUTPUT;
}

static int output_spec(const ctsr_context *ctx, const ctsr_op *op, int32_t *spec)
{
    spec[CTSR_SPEC_WG] = ctx->wg;
    spec[CTSR_SPEC_OUTPUT_FORMAT] = op->fmt;
    spec[CTSR_SPEC_OUTPUT_S] = op->scale;
    spec[CTSR_SPEC_OUTPUT_TAIL4] = c4(3 * op->scale * op->scale);
    return CTSR_SPEC_OUTPUT_COUNT;
}

static void output_push(const ctsr_op *op, const ctsr_tile *t, ctsr_push *pc)
{
    ctsr_pc_output *p = &pc->output;
    p->width = t->rw;
    p->height = t->rh;
    p->ix0 = t->ix - t->rx;
    p->iy0 = t->iy - t->ry;
    p->iw = t->iw;
    p->ih = t->ih;
    p->fx0 = t->ix;
    p->fy0 = t->iy;
    p->fw = t->fw * op->scale;
    if (op->fmt >= CTSR_FMT_I420) {
        p->fh = t->fh * op->scale;
        yuv_colour(op->yuv, &p->kr, &p->kb, &p->flags);
    }
}

/* one output pixel per invocation; YUV: one 2x2 block */
static void output_groups(const ctsr_context *ctx, const ctsr_op *op, const ctsr_tile *t,
                          uint32_t g[3])
{
    const int S = op->scale;
    if (op->fmt >= CTSR_FMT_I420) {
        g[0] = (uint32_t)cdiv(cdiv(t->iw * S, 2), ctx->wg);
        g[1] = (uint32_t)cdiv(t->ih * S, 2);
    } else {
        g[0] = (uint32_t)cdiv(t->iw * S, ctx->wg);
        g[1] = (uint32_t)(t->ih * S);
    }
}

const ctsr_op_kind ctsr_op_kinds[K_COUNT] = {
    [K_UNPACK] = {"unpack", unpack_shader, unpack_spec, unpack_push, unpack_groups},
    [K_CONV] = {"conv", conv_shader_of, conv_spec, conv_push, conv_groups},
    [K_LN] = {"layernorm", ln_shader, ln_spec, ln_push, ln_groups},
    [K_WATTN] = {"wattn", wattn_shader, wattn_spec, wattn_push, wattn_groups},
    [K_OUTPUT] = {"output", output_shader, output_spec, output_push, output_groups},
};

/* ---- using the table ---- */

int ctsr_op_specialize(const ctsr_context *ctx, const ctsr_op *op, int32_t *spec, int *n)
{
    const ctsr_op_kind *k = &ctsr_op_kinds[op->kind];
    memset(spec, 0, CTSR_MAX_SPEC * sizeof *spec);
    *n = k->spec(ctx, op, spec);
    return k->shader(ctx, op);
}

int ctsr_op_pipeline(ctsr_context *ctx, const ctsr_op *op, VkPipeline *out, char *err,
                     size_t errlen)
{
    int32_t spec[CTSR_MAX_SPEC];
    int n;
    const ctsr_shader_code *sc = &ctsr_shaders[ctsr_op_specialize(ctx, op, spec, &n)];
    return ctsr_vk_pipeline(&ctx->vk, ctx->fp16 ? sc->spv16 : sc->spv32,
                            ctx->fp16 ? sc->size16 : sc->size32, spec, n, out, err, errlen);
}

void ctsr_op_record(ctsr_context *ctx, VkPipeline pipe, VkDescriptorSet set, const ctsr_op *op,
                    const ctsr_tile *t)
{
    const ctsr_op_kind *k = &ctsr_op_kinds[op->kind];
    VkCommandBuffer cmd = ctx->vk.cmd;
    ctsr_push pc;
    uint32_t g[3] = {1, 1, 1};
    memset(&pc, 0, sizeof pc);
    k->push(op, t, &pc);
    k->groups(ctx, op, t, g);
    vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ctx->vk.pipe_layout, 0, 1, &set,
                            0, NULL);
    vkCmdPushConstants(cmd, ctx->vk.pipe_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, CTSR_PUSH_BYTES,
                       &pc);
    vkCmdDispatch(cmd, g[0], g[1], g[2]);
}

void ctsr_write_set(VkDevice dev, VkDescriptorSet set, const VkBuffer bufs[CTSR_BINDINGS],
                    const VkBufferView views[CTSR_VIEW_BINDINGS])
{
    VkDescriptorBufferInfo bi[CTSR_BINDINGS];
    VkWriteDescriptorSet w[CTSR_ALL_BINDINGS];
    for (int j = 0; j < CTSR_ALL_BINDINGS; j++) {
        w[j] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = (uint32_t)j,
                                      .descriptorCount = 1,
                                      .descriptorType = ctsr_vk_binding_type(j)};
        if (j < CTSR_BINDINGS) {
            bi[j] = (VkDescriptorBufferInfo){.buffer = bufs[j], .range = VK_WHOLE_SIZE};
            w[j].pBufferInfo = &bi[j];
        } else {
            w[j].pTexelBufferView = &views[j - CTSR_BINDINGS];
        }
    }
    vkUpdateDescriptorSets(dev, CTSR_ALL_BINDINGS, w, 0, NULL);
}

void ctsr_set_views(VkBufferView in, VkBufferView weights, VkBufferView film, VkBufferView out,
                    VkBufferView b2, VkBufferView spare, VkBufferView views[CTSR_VIEW_BINDINGS])
{
    in = in ? in : spare;
    views[0] = in;
    views[1] = weights ? weights : spare;
    views[2] = film ? film : spare;
    views[3] = in;
    views[4] = out ? out : b2 ? b2 : spare;
}
