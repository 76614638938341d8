/* libctsr: the network as a list of dispatches. The model's layers become one dispatch each
 * (a pipeline: SPIR-V and specialization constants; the tile tensors it binds; its weight
 * offsets), their weights one packed buffer (B_WEIGHTS), and every dispatch one descriptor
 * set over the context's buffers. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include "conv1_plain_f16.spv.h"
#include "conv1_plain_f32.spv.h"
#include "conv1_shuffle_f16.spv.h"
#include "conv1_shuffle_f32.spv.h"
#include "conv3_plain_f16.spv.h"
#include "conv3_plain_f32.spv.h"
#include "conv3_shuffle_f16.spv.h"
#include "conv3_shuffle_f32.spv.h"
#include "layernorm_f16.spv.h"
#include "layernorm_f32.spv.h"
#include "output_f16.spv.h"
#include "output_f32.spv.h"
#include "output_yuv_f16.spv.h"
#include "output_yuv_f32.spv.h"
#include "unpack_f16.spv.h"
#include "unpack_f32.spv.h"
#include "unpack_yuv_f16.spv.h"
#include "unpack_yuv_f32.spv.h"
#include "wattn_f16.spv.h"
#include "wattn_f32.spv.h"

/* the SPIR-V of every shader variant, fp32 and fp16 activations */
const ctsr_shader_code ctsr_shaders[K_SHADER_COUNT] = {
    [K_UNPACK] = {ctsr_spv_unpack_f32, ctsr_spv_unpack_f16, sizeof ctsr_spv_unpack_f32,
                  sizeof ctsr_spv_unpack_f16},
#define CONV(v) {ctsr_spv_##v##_f32, ctsr_spv_##v##_f16, sizeof ctsr_spv_##v##_f32, sizeof ctsr_spv_##v##_f16}
    [K_CONV] = CONV(conv3_shuffle),
    [K_CONV1_SHUFFLE] = CONV(conv1_shuffle),
    [K_CONV3_PLAIN] = CONV(conv3_plain),
    [K_CONV1_PLAIN] = CONV(conv1_plain),
#undef CONV
    [K_LN] = {ctsr_spv_layernorm_f32, ctsr_spv_layernorm_f16, sizeof ctsr_spv_layernorm_f32,
              sizeof ctsr_spv_layernorm_f16},
    [K_WATTN] = {ctsr_spv_wattn_f32, ctsr_spv_wattn_f16, sizeof ctsr_spv_wattn_f32,
                 sizeof ctsr_spv_wattn_f16},
    [K_OUTPUT] = {ctsr_spv_output_f32, ctsr_spv_output_f16, sizeof ctsr_spv_output_f32,
                  sizeof ctsr_spv_output_f16},
    [K_UNPACK_YUV] = {ctsr_spv_unpack_yuv_f32, ctsr_spv_unpack_yuv_f16,
                      sizeof ctsr_spv_unpack_yuv_f32, sizeof ctsr_spv_unpack_yuv_f16},
    [K_OUTPUT_YUV] = {ctsr_spv_output_yuv_f32, ctsr_spv_output_yuv_f16,
                      sizeof ctsr_spv_output_yuv_f32, sizeof ctsr_spv_output_yuv_f16},
};


static int wpack_reserve(wpack *p, size_t n)
{
    n = (n + 3) & ~(size_t)3; /* keep every block 16-byte aligned */
    if (p->n + n > p->cap) {
        size_t cap = p->cap ? p->cap : 4096;
        while (cap < p->n + n)
            cap *= 2;
        float *w = realloc(p->w, cap * sizeof *w);
        if (!w)
            return -1;
        memset(w + p->cap, 0, (cap - p->cap) * sizeof *w);
        p->w = w;
        p->cap = cap;
    }
    size_t at = p->n;
    p->n += n;
    return (int)at;
}

/* conv weights [Cout][Cin][k][k] -> [ocg][ky][kx][ic / 4][oc % ocw][ic % 4] with ocw =
 * ctsr_conv_ocw(Cout) output channels per group; bias padded to a whole group */
int ctsr_pack_conv(wpack *p, const ctsr_layer *l, int *woff, int *boff)
{
    const int ocw = ctsr_conv_ocw(l->cout), cin4 = c4(l->cin), ocg = cdiv(l->cout, ocw);
    const int k = l->k;
    int wo = wpack_reserve(p, (size_t)ocg * k * k * cin4 * 4 * ocw);
    int bo = wpack_reserve(p, (size_t)ocg * ocw);
    if (wo < 0 || bo < 0)
        return -1;
    for (int oc = 0; oc < l->cout; oc++) {
        for (int ic = 0; ic < l->cin; ic++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    size_t dst =
                        (((((size_t)(oc / ocw) * k + ky) * k + kx) * cin4 + ic / 4) * ocw + oc % ocw) * 4 + ic % 4;
                    p->w[wo + dst] = l->w[(((size_t)oc * l->cin + ic) * k + ky) * k + kx];
                }
        p->w[bo + oc] = l->b[oc];
    }
    *woff = wo;
    *boff = bo;
    return 0;
}

int ctsr_pack_conv_ln(wpack *p, const ctsr_layer *l, const float *g, const float *b, int *woff,
                      int *boff)
{
    const int ocw = ctsr_conv_ocw(l->cout), ocg = cdiv(l->cout, ocw);
    const size_t nw = (size_t)l->cout * l->cin;
    float *fw = malloc(nw * sizeof *fw), *fb = malloc((size_t)l->cout * sizeof *fb);
    int ret = -1;
    if (l->k != 1 || !fw || !fb)
        goto done;
    for (int o = 0; o < l->cout; o++) {
        double bias = l->b[o];
        for (int i = 0; i < l->cin; i++) {
            fw[(size_t)o * l->cin + i] = l->w[(size_t)o * l->cin + i] * g[i];
            bias += (double)l->w[(size_t)o * l->cin + i] * b[i];
        }
        fb[o] = (float)bias;
    }
    const ctsr_layer f = {fw, fb, l->cout, l->cin, 1};
    if (ctsr_pack_conv(p, &f, woff, boff))
        goto done;
    const int so = wpack_reserve(p, (size_t)ocg * ocw);
    if (so != *boff + ocg * ocw) /* blocks are consecutive: the sums right after the bias */
        goto done;
    for (int o = 0; o < l->cout; o++) {
        double s = 0.0;
        for (int i = 0; i < l->cin; i++)
            s += fw[(size_t)o * l->cin + i];
        p->w[so + o] = (float)s;
    }
    ret = 0;
done:
    free(fw);
    free(fb);
    return ret;
}

int ctsr_get_pipe(ctsr_context *ctx, int kind, const int32_t *spec, int nspec, char *err,
                  size_t errlen)
{
    int32_t s[CTSR_MAX_SPEC] = {0};
    memcpy(s, spec, (size_t)nspec * sizeof *spec);
    for (int i = 0; i < ctx->npipes; i++)
        if (ctx->pipes[i].kind == kind && !memcmp(ctx->pipes[i].spec, s, sizeof s))
            return i;
    if (ctx->npipes == MAX_PIPES) {
        ctsr_seterr(err, errlen, "too many pipelines");
        return CTSR_E_INVALID;
    }
    pipe_entry *e = &ctx->pipes[ctx->npipes];
    e->kind = kind;
    memcpy(e->spec, s, sizeof s);
    const ctsr_shader_code *sc = &ctsr_shaders[kind];
    int ret = ctsr_vk_pipeline(&ctx->vk, ctx->fp16 ? sc->spv16 : sc->spv32,
                               ctx->fp16 ? sc->size16 : sc->size32, s, nspec, &e->pipe, err,
                               errlen);
    if (ret)
        return ret;
    return ctx->npipes++;
}

int ctsr_get_op_pipe(ctsr_context *ctx, const ctsr_op *op, char *err, size_t errlen)
{
    int32_t spec[CTSR_MAX_SPEC];
    int n;
    const int shader = ctsr_op_specialize(ctx, op, spec, &n);
    return ctsr_get_pipe(ctx, shader, spec, n, err, errlen);
}

/* Appends a dispatch of op reading binding 0 (in), writing binding 1 (out), with bindings
 * 2 and 3; its pipeline unless the kind has one per frame format. */
static int add(ctsr_context *ctx, const ctsr_op *op, int in, int out, int b2, int b3,
               dispatch **dp, char *err, size_t errlen)
{
    dispatch *d = &ctx->d[ctx->nd++];
    memset(d, 0, sizeof *d);
    d->op = *op;
    d->bind[0] = in;
    d->bind[1] = out;
    d->bind[2] = b2;
    d->bind[3] = b3;
    d->pipe_tmap = -1;
    if (dp)
        *dp = d;
    if (op->kind == K_UNPACK || op->kind == K_OUTPUT)
        return 0;
    return (d->pipe[0] = ctsr_get_op_pipe(ctx, op, err, errlen)) < 0 ? d->pipe[0] : 0;
}

/* unpack (frame -> IMG) and output (T1 + IMG -> frame): a pipeline per frame format (RGBA8,
 * float RGB; I420 and NV12 with 8-bit storage) */
static int add_frame_op(ctsr_context *ctx, ctsr_op *op, int in, int out, int b2, char *err,
                        size_t errlen)
{
    dispatch *d;
    int ret = add(ctx, op, in, out, b2, B_WEIGHTS, &d, err, errlen);
    const int nfmt = ctx->vk.storage8 ? CTSR_FMT_COUNT : CTSR_FMT_I420;
    for (int f = 0; !ret && f < nfmt; f++) {
        op->fmt = f;
        if ((d->pipe[f] = ctsr_get_op_pipe(ctx, op, err, errlen)) < 0)
            ret = d->pipe[f];
    }
    return ret;
}

static int add_conv(ctsr_context *ctx, wpack *p, const ctsr_layer *l, int in, int out, int act,
                    int mode, int film_off, char *err, size_t errlen)
{
    int woff, boff;
    if (ctsr_pack_conv(p, l, &woff, &boff)) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    const ctsr_op op = {.kind = K_CONV, .cin = l->cin, .cout = l->cout, .k = l->k, .act = act,
                        .mode = mode, .woff = woff, .boff = boff, .foff = film_off};
    dispatch *d;
    int ret = add(ctx, &op, in, out, B_WEIGHTS, B_FILM, &d, err, errlen);
    d->macs_per_px = (double)l->cout * l->cin * l->k * l->k;
    d->film = mode == CTSR_CONV_FILM;
    return ret;
}

/* LayerNorm (gamma g, beta b) and the 1x1 conv after it as one dispatch (CTSR_CONV_LN) */
static int add_ln_conv(ctsr_context *ctx, wpack *p, const float *g, const float *b,
                       const ctsr_layer *l, int in, int out, int act, char *err, size_t errlen)
{
    int woff, boff;
    if (ctsr_pack_conv_ln(p, l, g, b, &woff, &boff)) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    const ctsr_op op = {.kind = K_CONV, .cin = l->cin, .cout = l->cout, .k = 1, .act = act,
                        .mode = CTSR_CONV_LN, .woff = woff, .boff = boff};
    dispatch *d;
    int ret = add(ctx, &op, in, out, B_WEIGHTS, B_FILM, &d, err, errlen);
    d->macs_per_px = (double)l->cout * l->cin;
    return ret;
}

/* the attention and MLP halves of an attention block */
static int add_attention(ctsr_context *ctx, wpack *p, const ctsr_block *bl, char *err,
                         size_t errlen)
{
    const ctsr_config *c = &ctx->model->cfg;
    const int C = c->channels;
    const ctsr_op wattn = {.kind = K_WATTN, .c = C, .heads = c->heads, .win = c->window};
    int ret;
    if ((ret = add_ln_conv(ctx, p, bl->ln1_w, bl->ln1_b, &bl->qkv, B_X, B_T1, CTSR_ACT_NONE,
                           err, errlen)) ||
        (ret = add(ctx, &wattn, B_T1, B_T2, B_WEIGHTS, B_WEIGHTS, NULL, err, errlen)) ||
        (ret = add_conv(ctx, p, &bl->proj, B_T2, B_X, CTSR_ACT_NONE, CTSR_CONV_RESIDUAL, 0, err,
                        errlen)) ||
        (ret = add_ln_conv(ctx, p, bl->ln2_w, bl->ln2_b, &bl->mlp1, B_X, B_T1, CTSR_ACT_GELU,
                           err, errlen)))
        return ret;
    return add_conv(ctx, p, &bl->mlp2, B_T1, B_X, CTSR_ACT_NONE, CTSR_CONV_RESIDUAL, 0, err,
                    errlen);
}

/* the packed weights as B_WEIGHTS (device local, vec4 texels too), and B_FILM */
static int upload_weights(ctsr_context *ctx, const wpack *p, char *err, size_t errlen)
{
    const ctsr_config *c = &ctx->model->cfg;
    const size_t film_bytes = sizeof(float) * 2 * c->channels * c->blocks;
    int ret = ctsr_vk_buffer_create(&ctx->vk, &ctx->buf[B_WEIGHTS], p->n * sizeof(float), 0, err,
                                    errlen);
    if (!ret)
        ret = ctsr_vk_upload(&ctx->vk, &ctx->buf[B_WEIGHTS], p->w, p->n * sizeof(float), err,
                             errlen);
    if (!ret)
        ret = ctsr_vk_buffer_view(&ctx->vk, &ctx->buf[B_WEIGHTS], 0, err, errlen);
    if (!ret)
        ret = ctsr_vk_buffer_create(&ctx->vk, &ctx->buf[B_FILM], film_bytes, 1, err, errlen);
    if (!ret) /* 2 * C * blocks floats: whole texels (C is a multiple of 4) */
        ret = ctsr_vk_buffer_view_part(&ctx->vk, &ctx->buf[B_FILM], film_bytes, err, errlen);
    return ret;
}

#define TRY(x)                                                                                 \
    do {                                                                                       \
        if ((ret = (x)) < 0)                                                                   \
            goto fail;                                                                         \
    } while (0)

int ctsr_build_network(ctsr_context *ctx, char *err, size_t errlen)
{
    const ctsr_model *m = ctx->model;
    const ctsr_config *c = &m->cfg;
    wpack p = {0};
    int ret = 0;
    ctx->nd = 0;

    ctsr_op unpack = {.kind = K_UNPACK};
    TRY(add_frame_op(ctx, &unpack, B_FRAME_IN, B_IMG, B_WEIGHTS, err, errlen));
    TRY(add_conv(ctx, &p, &m->head, B_IMG, B_X, CTSR_ACT_NONE, CTSR_CONV_ACT, 0, err, errlen));
    for (int b = 0; b < c->blocks; b++) {
        const ctsr_block *bl = &m->blocks[b];
        TRY(add_conv(ctx, &p, &bl->conv1, B_X, B_T1, c->act, CTSR_CONV_ACT, 0, err, errlen));
        TRY(add_conv(ctx, &p, &bl->conv2, B_T1, B_X, CTSR_ACT_NONE, CTSR_CONV_FILM,
                     b * 2 * c->channels, err, errlen));
        if (bl->has_attn)
            TRY(add_attention(ctx, &p, bl, err, errlen));
    }
    TRY(add_conv(ctx, &p, &m->tail, B_X, B_T1, CTSR_ACT_NONE, CTSR_CONV_ACT, 0, err, errlen));
    ctsr_op output = {.kind = K_OUTPUT, .scale = c->scale};
    TRY(add_frame_op(ctx, &output, B_T1, B_FRAME_OUT, B_IMG, err, errlen));
    ret = upload_weights(ctx, &p, err, errlen);
fail:
    free(p.w);
    return ret < 0 ? ret : 0;
}

/* Receptive radius of the network in input pixels, rounded up to the window. */
int ctsr_network_overlap(const ctsr_config *c)
{
    int n_attn = 0;
    for (int b = 0; b < c->blocks; b++)
        n_attn += (c->attn_mask >> b) & 1;
    /* head, 2 convs per block, w-1 per attention, tail, and 1 for the bilinear residual */
    int r = 1 + 2 * c->blocks + n_attn * (c->window - 1) + 1 + 1;
    return cdiv(r, c->window) * c->window;
}

int ctsr_alloc_descriptors(ctsr_context *ctx, char *err, size_t errlen)
{
    int ret = ctsr_vk_descriptor_pool(&ctx->vk, (uint32_t)ctx->nd, &ctx->dpool, err, errlen);
    for (int i = 0; !ret && i < ctx->nd; i++) {
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                          .descriptorPool = ctx->dpool,
                                          .descriptorSetCount = 1,
                                          .pSetLayouts = &ctx->vk.set_layout};
        VK_CHECK(vkAllocateDescriptorSets(ctx->vk.dev, &ai, &ctx->d[i].set));
    }
fail:
    return ret;
}

void ctsr_write_descriptors(ctsr_context *ctx)
{
    for (int i = 0; i < ctx->nd; i++) {
        const dispatch *d = &ctx->d[i];
        VkBuffer bufs[CTSR_BINDINGS];
        for (int j = 0; j < CTSR_BINDINGS; j++)
            bufs[j] = ctx->buf[d->bind[j]].buf;
        /* a frame buffer has no view (dispatches that read one never use binding 0's) */
        VkBufferView views[CTSR_VIEW_BINDINGS];
        ctsr_set_views(ctx->buf[d->bind[0]].view, ctx->buf[B_WEIGHTS].view,
                       ctx->buf[B_FILM].view, ctx->buf[d->bind[1]].view,
                       ctx->buf[d->bind[2]].view, ctx->buf[B_X].view, views);
        ctsr_write_set(ctx->vk.dev, d->set, bufs, views);
    }
}
