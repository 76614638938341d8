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

/* conv weights [Cout][Cin][k][k] -> [ocg][ky][kx][ic / 4][oc % 8][ic % 4]; bias padded to 8 */
int ctsr_pack_conv(wpack *p, const ctsr_layer *l, int *woff, int *boff)
{
    const int cin4 = c4(l->cin), ocg = cdiv(l->cout, 8), k = l->k;
    int wo = wpack_reserve(p, (size_t)ocg * k * k * cin4 * 4 * 8);
    int bo = wpack_reserve(p, (size_t)ocg * 8);
    if (wo < 0 || bo < 0)
        return -1;
    for (int oc = 0; oc < l->cout; oc++) {
        for (int ic = 0; ic < l->cin; ic++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++) {
                    size_t dst =
                        (((((size_t)(oc / 8) * k + ky) * k + kx) * cin4 + ic / 4) * 8 + oc % 8) * 4 + ic % 4;
                    p->w[wo + dst] = l->w[(((size_t)oc * l->cin + ic) * k + ky) * k + kx];
                }
        p->w[bo + oc] = l->b[oc];
    }
    *woff = wo;
    *boff = bo;
    return 0;
}

static int pack_vec(wpack *p, const float *v, int n)
{
    int o = wpack_reserve(p, (size_t)n);
    if (o >= 0)
        memcpy(p->w + o, v, (size_t)n * sizeof *v);
    return o;
}

int ctsr_get_pipe(ctsr_context *ctx, int kind, const int32_t *spec, int nspec, char *err,
                    size_t errlen)
{
    int32_t s[8] = {0};
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
    int ret = ctx->fp16 ? ctsr_vk_pipeline(&ctx->vk, ctsr_shaders[kind].spv16, ctsr_shaders[kind].size16,
                                           s, nspec, &e->pipe, err, errlen)
                        : ctsr_vk_pipeline(&ctx->vk, ctsr_shaders[kind].spv32, ctsr_shaders[kind].size32,
                                           s, nspec, &e->pipe, err, errlen);
    if (ret)
        return ret;
    return ctx->npipes++;
}

static dispatch *add(ctsr_context *ctx, int kind, int in, int out, int b2, int b3)
{
    dispatch *d = &ctx->d[ctx->nd++];
    memset(d, 0, sizeof *d);
    d->kind = kind;
    d->bind[0] = in;
    d->bind[1] = out;
    d->bind[2] = b2;
    d->bind[3] = b3;
    return d;
}

static int add_conv(ctsr_context *ctx, wpack *p, const ctsr_layer *l, int in, int out, int act,
                    int mode, int film_off, char *err, size_t errlen)
{
    int woff, boff;
    if (ctsr_pack_conv(p, l, &woff, &boff)) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    int32_t spec[7] = {ctx->wg_conv, c4(l->cin), c4(l->cout), l->k, act, mode,
                       ctx->vk.subgroup_shuffle};
    int pi = ctsr_get_pipe(ctx, conv_shader(l->k, ctx->vk.subgroup_shuffle), spec, 7, err, errlen);
    if (pi < 0)
        return pi;
    dispatch *d = add(ctx, K_CONV, in, out, B_WEIGHTS, B_FILM);
    d->pipe[0] = pi;
    d->pc[0] = woff;
    d->pc[1] = boff;
    d->pc[2] = film_off;
    d->groups_z = cdiv(l->cout, 8);
    d->macs_per_px = (double)l->cout * l->cin * l->k * l->k;
    d->film = mode == 1;
    d->pipe_tmap = -1;
    return 0;
}

static int add_ln(ctsr_context *ctx, wpack *p, const float *g, const float *b, int c, int in,
                  int out, char *err, size_t errlen)
{
    int go = pack_vec(p, g, c), bo = pack_vec(p, b, c);
    if (go < 0 || bo < 0) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    int32_t spec[2] = {ctx->wg, c4(c)};
    int pi = ctsr_get_pipe(ctx, K_LN, spec, 2, err, errlen);
    if (pi < 0)
        return pi;
    dispatch *d = add(ctx, K_LN, in, out, B_WEIGHTS, B_WEIGHTS);
    d->pipe[0] = pi;
    d->pc[0] = go;
    d->pc[1] = bo;
    return 0;
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
    const int C = c->channels;
    wpack p = {0};
    int ret = 0;
    ctx->nd = 0;

    /* unpack: frame -> IMG (RGBA8, float RGB; I420 and NV12 with 8-bit storage) */
    const int nfmt = ctx->vk.storage8 ? FMT_COUNT : FMT_I420;
    {
        dispatch *d = add(ctx, K_UNPACK, B_FRAME_IN, B_IMG, B_WEIGHTS, B_WEIGHTS);
        for (int f = 0; f < nfmt; f++) {
            int32_t spec[2] = {ctx->wg, f};
            TRY(d->pipe[f] = ctsr_get_pipe(ctx, f >= FMT_I420 ? K_UNPACK_YUV : K_UNPACK, spec, 2,
                                      err, errlen));
        }
    }
    TRY(add_conv(ctx, &p, &m->head, B_IMG, B_X, CTSR_ACT_NONE, 0, 0, err, errlen));
    for (int b = 0; b < c->blocks; b++) {
        const ctsr_block *bl = &m->blocks[b];
        TRY(add_conv(ctx, &p, &bl->conv1, B_X, B_T1, c->act, 0, 0, err, errlen));
        TRY(add_conv(ctx, &p, &bl->conv2, B_T1, B_X, CTSR_ACT_NONE, 1, b * 2 * C, err, errlen));
        if (!bl->has_attn)
            continue;
        TRY(add_ln(ctx, &p, bl->ln1_w, bl->ln1_b, C, B_X, B_T2, err, errlen));
        TRY(add_conv(ctx, &p, &bl->qkv, B_T2, B_T1, CTSR_ACT_NONE, 0, 0, err, errlen));
        {
            int32_t spec[5] = {ctx->wg_conv, c4(C), c->heads, c->window,
                               wattn_shared_keys(ctx, c4(C) / c->heads, c->window)};
            dispatch *d = add(ctx, K_WATTN, B_T1, B_T2, B_WEIGHTS, B_WEIGHTS);
            TRY(d->pipe[0] = ctsr_get_pipe(ctx, K_WATTN, spec, 5, err, errlen));
        }
        TRY(add_conv(ctx, &p, &bl->proj, B_T2, B_X, CTSR_ACT_NONE, 2, 0, err, errlen));
        TRY(add_ln(ctx, &p, bl->ln2_w, bl->ln2_b, C, B_X, B_T2, err, errlen));
        TRY(add_conv(ctx, &p, &bl->mlp1, B_T2, B_T1, CTSR_ACT_GELU, 0, 0, err, errlen));
        TRY(add_conv(ctx, &p, &bl->mlp2, B_T1, B_X, CTSR_ACT_NONE, 2, 0, err, errlen));
    }
    TRY(add_conv(ctx, &p, &m->tail, B_X, B_T1, CTSR_ACT_NONE, 0, 0, err, errlen));
    {
        dispatch *d = add(ctx, K_OUTPUT, B_T1, B_FRAME_OUT, B_IMG, B_WEIGHTS);
        for (int f = 0; f < nfmt; f++) {
            int32_t spec[4] = {ctx->wg, f, c->scale, c4(3 * c->scale * c->scale)};
            TRY(d->pipe[f] = ctsr_get_pipe(ctx, f >= FMT_I420 ? K_OUTPUT_YUV : K_OUTPUT, spec, 4,
                                      err, errlen));
        }
    }

    ret = ctsr_vk_buffer_create(&ctx->vk, &ctx->buf[B_WEIGHTS], p.n * sizeof(float), 0, err,
                                errlen);
    if (!ret)
        ret = ctsr_vk_upload(&ctx->vk, &ctx->buf[B_WEIGHTS], p.w, p.n * sizeof(float), err,
                             errlen);
    if (!ret)
        ret = ctsr_vk_buffer_view(&ctx->vk, &ctx->buf[B_WEIGHTS], 0, err, errlen);
    if (!ret)
        ret = ctsr_vk_buffer_create(&ctx->vk, &ctx->buf[B_FILM],
                                    sizeof(float) * 2 * C * c->blocks, 1, err, errlen);
    if (!ret) /* 2 * C * blocks floats: whole texels (C is a multiple of 4) */
        ret = ctsr_vk_buffer_view_part(&ctx->vk, &ctx->buf[B_FILM],
                                       sizeof(float) * 2 * C * c->blocks, err, errlen);
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
    int ret = 0;
    VkDescriptorPoolSize ps[2] = {
        {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
         .descriptorCount = (uint32_t)(ctx->nd * CTSR_BINDINGS)},
        {.type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
         .descriptorCount = (uint32_t)(CTSR_TEXEL_BINDINGS * ctx->nd)}};
    VkDescriptorPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = (uint32_t)ctx->nd,
                                      .poolSizeCount = 2,
                                      .pPoolSizes = ps};
    VK_CHECK(vkCreateDescriptorPool(ctx->vk.dev, &pci, NULL, &ctx->dpool));
    for (int i = 0; i < ctx->nd; i++) {
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
        VkDescriptorBufferInfo bi[CTSR_BINDINGS];
        VkWriteDescriptorSet w[CTSR_BINDINGS + CTSR_TEXEL_BINDINGS];
        for (int j = 0; j < CTSR_BINDINGS; j++) {
            bi[j] = (VkDescriptorBufferInfo){.buffer = ctx->buf[ctx->d[i].bind[j]].buf,
                                             .range = VK_WHOLE_SIZE};
            w[j] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                          .dstSet = ctx->d[i].set,
                                          .dstBinding = (uint32_t)j,
                                          .descriptorCount = 1,
                                          .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                          .pBufferInfo = &bi[j]};
        }
        /* texel view of the input; dispatches that read a frame buffer never use it */
        const ctsr_buffer *in = &ctx->buf[ctx->d[i].bind[0]];
        VkBufferView view = in->view ? in->view : ctx->buf[B_X].view;
        w[CTSR_BINDINGS] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = ctx->d[i].set,
            .dstBinding = CTSR_TEXEL_BINDING,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
            .pTexelBufferView = &view};
        w[CTSR_BINDINGS + 1] = w[CTSR_BINDINGS];
        w[CTSR_BINDINGS + 1].dstBinding = CTSR_WEIGHT_TEXEL_BINDING;
        w[CTSR_BINDINGS + 1].pTexelBufferView = &ctx->buf[B_WEIGHTS].view;
        /* the FiLM table (MODE 3 convolutions only; the others never read it) */
        w[CTSR_BINDINGS + 2] = w[CTSR_BINDINGS];
        w[CTSR_BINDINGS + 2].dstBinding = CTSR_FILM_TEXEL_BINDING;
        w[CTSR_BINDINGS + 2].pTexelBufferView =
            ctx->buf[B_FILM].view ? &ctx->buf[B_FILM].view : &ctx->buf[B_X].view;
        vkUpdateDescriptorSets(ctx->vk.dev, CTSR_BINDINGS + CTSR_TEXEL_BINDINGS, w, 0, NULL);
    }
}
