/* libctsr internal: one shader at a time on host arrays (see ops.h). Test support; not used
 * on the streaming path. */
#include "ops.h"

#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct op_buf {
    const float *src; /* host NHWC data to upload (unpadded channels), or NULL */
    size_t px;        /* pixels */
    int c;            /* channels (unpadded) */
    int raw;          /* 1: src holds `c` floats, copied as is (weights, film) */
} op_buf;

static void to_padded(const float *src, size_t px, int c, void *dst, int fp16)
{
    const int cp = c4(c) * 4;
    for (size_t p = 0; p < px; p++)
        for (int k = 0; k < cp; k++) {
            float v = k < c ? src[p * c + k] : 0.0f;
            if (fp16) {
                _Float16 hv = (_Float16)v;
                memcpy((uint16_t *)dst + p * cp + k, &hv, 2);
            } else {
                ((float *)dst)[p * cp + k] = v;
            }
        }
}

static void from_padded(const void *src, size_t px, int c, float *dst, int fp16)
{
    const int cp = c4(c) * 4;
    for (size_t p = 0; p < px; p++)
        for (int k = 0; k < c; k++) {
            if (fp16) {
                _Float16 hv;
                memcpy(&hv, (const uint16_t *)src + p * cp + k, 2);
                dst[p * c + k] = (float)hv;
            } else {
                dst[p * c + k] = ((const float *)src)[p * cp + k];
            }
        }
}

/* Benchmark mode (ctsr_op_conv_bench): after the checked run, run_op times `reps` dispatches
 * and writes the mean device ms of one into `ms`. NULL everywhere else. */
typedef struct op_bench {
    int reps;
    double ms;
} op_bench;

/* The buffers of bindings 0..3 from b (host data uploaded, the rest zero); bindings 0..2
 * also as vec4 texels (the output too: the convolution reads its previous values so), binding
 * 3 (FiLM) too, for the MODE 1 and 3 convolutions. */
static int make_buffers(ctsr_context *ctx, const op_buf *b, int out_binding, int out_act,
                        ctsr_buffer buf[CTSR_BINDINGS], char *err, size_t errlen)
{
    ctsr_vk *vk = &ctx->vk;
    int ret;
    for (int i = 0; i < CTSR_BINDINGS; i++) {
        const int act = !b[i].raw && !(i == out_binding && !out_act);
        size_t bytes = b[i].raw ? (size_t)b[i].c * 4
                                : b[i].px * c4(b[i].c) * 4 * (act && ctx->fp16 ? 2 : 4);
        if ((ret = ctsr_vk_buffer_create(vk, &buf[i], bytes + 16, 1, err, errlen)))
            return ret;
        if (i <= 2 && (ret = ctsr_vk_buffer_view(vk, &buf[i], act && ctx->fp16, err, errlen)))
            return ret;
        if (i == 3 && (ret = ctsr_vk_buffer_view_part(vk, &buf[i], (bytes + 16) / 16 * 16, err,
                                                      errlen)))
            return ret;
        memset(buf[i].map, 0, bytes + 16);
        if (b[i].src && b[i].raw)
            memcpy(buf[i].map, b[i].src, bytes);
        else if (b[i].src)
            to_padded(b[i].src, b[i].px, b[i].c, buf[i].map, act && ctx->fp16);
    }
    return 0;
}

/* A descriptor pool with one set over buf (ctsr_write_set, as the network's sets). */
static int make_set(ctsr_context *ctx, const ctsr_buffer buf[CTSR_BINDINGS], int out_raw,
                    VkDescriptorPool *pool, VkDescriptorSet *set, char *err, size_t errlen)
{
    ctsr_vk *vk = &ctx->vk;
    int ret = 0;
    if ((ret = ctsr_vk_descriptor_pool(vk, 1, pool, err, errlen)))
        return ret;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = *pool, .descriptorSetCount = 1,
                                      .pSetLayouts = &vk->set_layout};
    VK_CHECK(vkAllocateDescriptorSets(vk->dev, &ai, set));
    VkBuffer bufs[CTSR_BINDINGS];
    for (int j = 0; j < CTSR_BINDINGS; j++)
        bufs[j] = buf[j].buf;
    /* as the network's sets; a raw output is a frame */
    VkBufferView views[CTSR_VIEW_BINDINGS];
    ctsr_set_views(buf[0].view, buf[2].view, buf[3].view, out_raw ? VK_NULL_HANDLE : buf[1].view,
                   buf[2].view, buf[0].view, views);
    ctsr_write_set(vk->dev, *set, bufs, views);
fail:
    return ret;
}

/* Records op on tile t `reps` times (a barrier after each) and submits; reps > 0 between two
 * timestamps, their distance per dispatch into *ms. reps == 0: once, untimed. */
static int submit_op(ctsr_context *ctx, VkPipeline pipe, VkDescriptorSet set, const ctsr_op *op,
                     const ctsr_tile *t, int reps, double *ms, char *err, size_t errlen)
{
    ctsr_vk *vk = &ctx->vk;
    VkQueryPool qp = VK_NULL_HANDLE;
    int ret = 0;
    VkCommandBufferBeginInfo cbi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    if (reps > 0) {
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2};
        VK_CHECK(vkCreateQueryPool(vk->dev, &qi, NULL, &qp));
    }
    VK_CHECK(vkBeginCommandBuffer(vk->cmd, &cbi));
    if (qp) {
        vkCmdResetQueryPool(vk->cmd, qp, 0, 2);
        vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, qp, 0);
    }
    for (int i = 0; i < (reps > 0 ? reps : 1); i++) {
        ctsr_op_record(ctx, pipe, set, op, t);
        vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                             qp ? VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT
                                : VK_PIPELINE_STAGE_HOST_BIT,
                             0, 1, &mb, 0, NULL, 0, NULL);
    }
    if (qp)
        vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, qp, 1);
    VK_CHECK(vkEndCommandBuffer(vk->cmd));
    if ((ret = ctsr_vk_submit_wait(vk, err, errlen)) || !qp)
        goto fail;
    uint64_t ts[2];
    VK_CHECK(vkGetQueryPoolResults(vk->dev, qp, 0, 2, sizeof ts, ts, sizeof *ts,
                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    *ms = (double)(ts[1] - ts[0]) * vk->props.limits.timestampPeriod * 1e-6 / reps;
fail:
    if (qp)
        vkDestroyQueryPool(vk->dev, qp, NULL);
    return ret;
}

/* Runs op once on the whole w x h region `t` with bindings b[0..3] (through the operator
 * table, as the network does); binding out_binding is read back into out (out_act: as
 * activations, unpadded; else raw floats). With `bench` it then times bench->reps
 * dispatches. */
static int run_op(ctsr_context *ctx, const ctsr_op *op, const ctsr_tile *t, const op_buf *b,
                  int out_binding, int out_act, float *out, op_bench *bench, char *err,
                  size_t errlen)
{
    ctsr_vk *vk = &ctx->vk;
    ctsr_buffer buf[CTSR_BINDINGS] = {0};
    VkPipeline pipe = VK_NULL_HANDLE;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    VkDescriptorSet set;
    int ret;
    if ((ret = make_buffers(ctx, b, out_binding, out_act, buf, err, errlen)) ||
        (ret = ctsr_op_pipeline(ctx, op, &pipe, err, errlen)) ||
        (ret = make_set(ctx, buf, b[1].raw, &pool, &set, err, errlen)) ||
        (ret = submit_op(ctx, pipe, set, op, t, 0, NULL, err, errlen)))
        goto fail;
    if (bench && bench->reps > 0 &&
        (ret = submit_op(ctx, pipe, set, op, t, bench->reps, &bench->ms, err, errlen)))
        goto fail;
    if (out_act)
        from_padded(buf[out_binding].map, b[out_binding].px, b[out_binding].c, out, ctx->fp16);
    else
        memcpy(out, buf[out_binding].map, b[out_binding].px * b[out_binding].c * sizeof(float));
fail:
    if (pool)
        vkDestroyDescriptorPool(vk->dev, pool, NULL);
    if (pipe)
        vkDestroyPipeline(vk->dev, pipe, NULL);
    for (int i = 0; i < CTSR_BINDINGS; i++)
        ctsr_vk_buffer_destroy(vk, &buf[i]);
    return ret;
}

/* a w x h region at (rx, ry) of a frame_w x frame_h frame, its own interior */
static ctsr_tile region(int rx, int ry, int w, int h, int frame_w, int frame_h)
{
    return (ctsr_tile){rx, ry, w, h, rx, ry, w, h, frame_w, frame_h};
}

static int op_conv(ctsr_context *ctx, const float *in, int h, int w, const ctsr_layer *l, int act,
                   int mode, const float *film, float *out, op_bench *bench, char *err,
                   size_t errlen)
{
    wpack p = {0};
    int woff, boff;
    if (ctsr_pack_conv(&p, l, &woff, &boff)) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    const size_t px = (size_t)w * h;
    op_buf b[CTSR_BINDINGS] = {
        {in, px, l->cin, 0},
        {mode ? out : NULL, px, l->cout, 0},
        {p.w, 0, (int)p.n, 1},
        {film, 0, film ? 2 * l->cout : 4, 1},
    };
    const ctsr_op op = {.kind = K_CONV, .cin = l->cin, .cout = l->cout, .k = l->k, .act = act,
                        .mode = mode, .woff = woff, .boff = boff};
    const ctsr_tile t = region(0, 0, w, h, w, h);
    int ret = run_op(ctx, &op, &t, b, 1, 1, out, bench, err, errlen);
    free(p.w);
    return ret;
}

int ctsr_op_conv(ctsr_context *ctx, const float *in, int h, int w, const ctsr_layer *l, int act,
                 int mode, const float *film, float *out, char *err, size_t errlen)
{
    return op_conv(ctx, in, h, w, l, act, mode, film, out, NULL, err, errlen);
}

int ctsr_op_conv_ln(ctsr_context *ctx, const float *in, int h, int w, const ctsr_layer *l,
                    const float *g, const float *bb, int act, float *out, char *err,
                    size_t errlen)
{
    if (l->k != 1 || l->cin % 4) {
        ctsr_seterr(err, errlen, "LayerNorm + conv: a 1x1 conv with cin %% 4 == 0");
        return CTSR_E_INVALID;
    }
    wpack p = {0};
    int woff, boff;
    if (ctsr_pack_conv_ln(&p, l, g, bb, &woff, &boff)) {
        free(p.w);
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    const size_t px = (size_t)w * h;
    op_buf b[CTSR_BINDINGS] = {
        {in, px, l->cin, 0},
        {NULL, px, l->cout, 0},
        {p.w, 0, (int)p.n, 1},
        {NULL, 0, 4, 1},
    };
    const ctsr_op op = {.kind = K_CONV, .cin = l->cin, .cout = l->cout, .k = 1, .act = act,
                        .mode = CTSR_CONV_LN, .woff = woff, .boff = boff};
    const ctsr_tile t = region(0, 0, w, h, w, h);
    int ret = run_op(ctx, &op, &t, b, 1, 1, out, NULL, err, errlen);
    free(p.w);
    return ret;
}

int ctsr_op_conv_film_map(ctsr_context *ctx, const float *in, int h, int w, const ctsr_layer *l,
                          const float *table, int nlevels, const float *pos, int frame_w,
                          int frame_h, int rx, int ry, float *out, char *err, size_t errlen)
{
    if (l->k != 3 || l->cout % 4 || rx < 0 || ry < 0 || rx + w > frame_w || ry + h > frame_h) {
        ctsr_seterr(err, errlen, "FiLM map: a 3x3 conv with cout %% 4 == 0 and the region "
                    "inside the map");
        return CTSR_E_INVALID;
    }
    wpack p = {0};
    int woff, boff;
    const size_t tf = (size_t)nlevels * 2 * l->cout, mf = (size_t)frame_w * frame_h;
    float *film = malloc((tf + mf) * sizeof *film);
    if (!film || ctsr_pack_conv(&p, l, &woff, &boff)) {
        free(film);
        free(p.w);
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    memcpy(film, table, tf * sizeof *film);
    memcpy(film + tf, pos, mf * sizeof *film);
    const size_t px = (size_t)w * h;
    op_buf b[CTSR_BINDINGS] = {
        {in, px, l->cin, 0},
        {out, px, l->cout, 0},
        {p.w, 0, (int)p.n, 1},
        {film, 0, (int)(tf + mf), 1},
    };
    const ctsr_op op = {.kind = K_CONV, .cin = l->cin, .cout = l->cout, .k = 3,
                        .act = CTSR_ACT_NONE, .mode = CTSR_CONV_FILM_MAP, .woff = woff,
                        .boff = boff, .foff = 0, .lstride = 2 * l->cout, .moff = (int32_t)tf};
    const ctsr_tile t = region(rx, ry, w, h, frame_w, frame_h);
    int ret = run_op(ctx, &op, &t, b, 1, 1, out, NULL, err, errlen);
    free(p.w);
    free(film);
    return ret;
}

int ctsr_op_layernorm(ctsr_context *ctx, const float *in, int h, int w, int c, const float *g,
                      const float *bb, float *out, char *err, size_t errlen)
{
    float *gb = calloc((size_t)2 * c4(c) * 4, sizeof *gb);
    if (!gb) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    memcpy(gb, g, (size_t)c * sizeof *gb);
    memcpy(gb + c4(c) * 4, bb, (size_t)c * sizeof *gb);
    const size_t px = (size_t)w * h;
    op_buf b[CTSR_BINDINGS] = {{in, px, c, 0}, {NULL, px, c, 0}, {gb, 0, 2 * c4(c) * 4, 1},
                               {NULL, 0, 4, 1}};
    const ctsr_op op = {.kind = K_LN, .c = c, .woff = 0, .boff = c4(c) * 4};
    const ctsr_tile t = region(0, 0, w, h, w, h);
    int ret = run_op(ctx, &op, &t, b, 1, 1, out, NULL, err, errlen);
    free(gb);
    return ret;
}

int ctsr_op_wattn(ctsr_context *ctx, const float *qkv, int h, int w, int c, int heads, int win,
                  float *out, char *err, size_t errlen)
{
    const size_t px = (size_t)w * h;
    op_buf b[CTSR_BINDINGS] = {{qkv, px, 3 * c, 0}, {NULL, px, c, 0}, {NULL, 0, 4, 1},
                               {NULL, 0, 4, 1}};
    const ctsr_op op = {.kind = K_WATTN, .c = c, .heads = heads, .win = win};
    const ctsr_tile t = region(0, 0, w, h, w, h);
    return run_op(ctx, &op, &t, b, 1, 1, out, NULL, err, errlen);
}

int ctsr_op_output(ctsr_context *ctx, const float *tail, const float *img, int h, int w, int s,
                   float *out, char *err, size_t errlen)
{
    const size_t px = (size_t)w * h;
    /* the output shader reads an RGBA image tile */
    float *rgba = calloc(px * 4, sizeof *rgba);
    if (!rgba) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    for (size_t i = 0; i < px; i++) {
        memcpy(rgba + i * 4, img + i * 3, 3 * sizeof *rgba);
        rgba[i * 4 + 3] = 1.0f;
    }
    op_buf b[CTSR_BINDINGS] = {{tail, px, 3 * s * s, 0},
                               {NULL, px * s * s, 3, 0},
                               {rgba, px, 4, 0},
                               {NULL, 0, 4, 1}};
    const ctsr_op op = {.kind = K_OUTPUT, .fmt = CTSR_FMT_RGB_F32, .scale = s};
    const ctsr_tile t = region(0, 0, w, h, w, h);
    /* the frame buffer holds tightly packed RGB floats: read it back raw */
    b[1].raw = 1;
    b[1].c = (int)(px * s * s * 3);
    b[1].px = 1;
    int ret = run_op(ctx, &op, &t, b, 1, 0, out, NULL, err, errlen);
    free(rgba);
    return ret;
}

int ctsr_op_unpack_rgba8(ctsr_context *ctx, const uint8_t *in, int h, int w, float *out,
                         char *err, size_t errlen)
{
    const size_t px = (size_t)w * h;
    op_buf b[CTSR_BINDINGS] = {{(const float *)in, 0, (int)px, 1},
                               {NULL, px, 4, 0},
                               {NULL, 0, 4, 1},
                               {NULL, 0, 4, 1}};
    const ctsr_op op = {.kind = K_UNPACK, .fmt = CTSR_FMT_RGBA8};
    const ctsr_tile t = region(0, 0, w, h, w, h);
    return run_op(ctx, &op, &t, b, 1, 1, out, NULL, err, errlen);
}

int ctsr_op_conv_bench(ctsr_context *ctx, int h, int w, int cin, int cout, int k, int reps,
                       double *ms, char *err, size_t errlen)
{
    const size_t px = (size_t)w * h;
    ctsr_layer l = {calloc((size_t)cout * cin * k * k, sizeof(float)), calloc((size_t)cout, sizeof(float)),
                    cout, cin, k};
    float *in = calloc(px * cin, sizeof(float)), *out = calloc(px * cout, sizeof(float));
    int ret = CTSR_E_NOMEM;
    if (!l.w || !l.b || !in || !out)
        ctsr_seterr(err, errlen, "out of memory");
    else {
        for (size_t i = 0; i < (size_t)cout * cin * k * k; i++)
            l.w[i] = (float)((i * 7919) % 13) / 13.0f - 0.5f;
        op_bench bench = {reps, 0.0};
        ret = op_conv(ctx, in, h, w, &l, CTSR_ACT_NONE, CTSR_CONV_ACT, NULL, out, &bench, err,
                      errlen);
        *ms = bench.ms;
    }
    free(l.w), free(l.b), free(in), free(out);
    return ret;
}
