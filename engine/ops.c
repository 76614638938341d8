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

/* Runs shader `kind` once with bindings b[0..3]; binding 1 (or out_binding) is read back. */
static double bench_ms; /* set by run_op when bench_reps > 0 */
static int bench_reps;

static int run_op(ctsr_context *ctx, int kind, const int32_t *spec, int nspec, const op_buf *b,
                  int out_binding, int out_act, const int32_t *pc, uint32_t gx, uint32_t gy,
                  uint32_t gz, float *out, char *err, size_t errlen)
{
    VkQueryPool qp = VK_NULL_HANDLE;
    ctsr_vk *vk = &ctx->vk;
    ctsr_buffer buf[CTSR_BINDINGS] = {0};
    VkPipeline pipe = VK_NULL_HANDLE;
    VkDescriptorPool pool = VK_NULL_HANDLE;
    VkDescriptorSet set;
    int ret = 0;
    const int fp16 = ctx->fp16;
    for (int i = 0; i < CTSR_BINDINGS; i++) {
        const int act = !b[i].raw && !(i == out_binding && !out_act);
        size_t bytes = b[i].raw ? (size_t)b[i].c * 4
                                : b[i].px * c4(b[i].c) * 4 * (act && fp16 ? 2 : 4);
        if ((ret = ctsr_vk_buffer_create(vk, &buf[i], bytes + 16, 1, err, errlen)))
            goto fail;
        if ((i == 0 || i == 2) && (ret = ctsr_vk_buffer_view(vk, &buf[i], act && fp16, err, errlen)))
            goto fail;
        /* binding 3 (FiLM) also as vec4 texels, for the MODE 3 convolution */
        if (i == 3 && (ret = ctsr_vk_buffer_view_part(vk, &buf[i], (bytes + 16) / 16 * 16, err,
                                                      errlen)))
            goto fail;
        memset(buf[i].map, 0, bytes + 16);
        if (b[i].src && b[i].raw)
            memcpy(buf[i].map, b[i].src, bytes);
        else if (b[i].src)
            to_padded(b[i].src, b[i].px, b[i].c, buf[i].map, act && fp16);
    }
    const ctsr_shader_code *sc = &ctsr_shaders[kind];
    if ((ret = ctsr_vk_pipeline(vk, fp16 ? sc->spv16 : sc->spv32, fp16 ? sc->size16 : sc->size32,
                                spec, nspec, &pipe, err, errlen)))
        goto fail;
    VkDescriptorPoolSize ps[2] = {
        {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = CTSR_BINDINGS},
        {.type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, .descriptorCount = CTSR_TEXEL_BINDINGS}};
    VkDescriptorPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = 1, .poolSizeCount = 2, .pPoolSizes = ps};
    VK_CHECK(vkCreateDescriptorPool(vk->dev, &pci, NULL, &pool));
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = pool, .descriptorSetCount = 1,
                                      .pSetLayouts = &vk->set_layout};
    VK_CHECK(vkAllocateDescriptorSets(vk->dev, &ai, &set));
    VkDescriptorBufferInfo bi[CTSR_BINDINGS];
    VkWriteDescriptorSet wr[CTSR_BINDINGS + CTSR_TEXEL_BINDINGS];
    for (int j = 0; j < CTSR_BINDINGS; j++) {
        bi[j] = (VkDescriptorBufferInfo){.buffer = buf[j].buf, .range = VK_WHOLE_SIZE};
        wr[j] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                       .dstSet = set, .dstBinding = (uint32_t)j,
                                       .descriptorCount = 1,
                                       .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                       .pBufferInfo = &bi[j]};
    }
    wr[CTSR_BINDINGS] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                               .dstSet = set, .dstBinding = CTSR_TEXEL_BINDING,
                                               .descriptorCount = 1,
                                               .descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
                                               .pTexelBufferView = &buf[0].view};
    wr[CTSR_BINDINGS + 1] = wr[CTSR_BINDINGS];
    wr[CTSR_BINDINGS + 1].dstBinding = CTSR_WEIGHT_TEXEL_BINDING;
    wr[CTSR_BINDINGS + 1].pTexelBufferView = &buf[2].view;
    wr[CTSR_BINDINGS + 2] = wr[CTSR_BINDINGS];
    wr[CTSR_BINDINGS + 2].dstBinding = CTSR_FILM_TEXEL_BINDING;
    wr[CTSR_BINDINGS + 2].pTexelBufferView = &buf[3].view;
    vkUpdateDescriptorSets(vk->dev, CTSR_BINDINGS + CTSR_TEXEL_BINDINGS, wr, 0, NULL);
    VkCommandBufferBeginInfo cbi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                    .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(vkBeginCommandBuffer(vk->cmd, &cbi));
    int32_t pcs[CTSR_PUSH_BYTES / 4] = {0};
    memcpy(pcs, pc, 10 * sizeof *pc);
    vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pipe_layout, 0, 1, &set,
                            0, NULL);
    vkCmdPushConstants(vk->cmd, vk->pipe_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, CTSR_PUSH_BYTES,
                       pcs);
    vkCmdDispatch(vk->cmd, gx, gy, gz);
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_HOST_BIT,
                         0, 1, &mb, 0, NULL, 0, NULL);
    VK_CHECK(vkEndCommandBuffer(vk->cmd));
    if ((ret = ctsr_vk_submit_wait(vk, err, errlen)))
        goto fail;
    if (bench_reps > 0) {
        /* benchmark mode: the same dispatch bench_reps times between two timestamps */
        VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                    .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2};
        VK_CHECK(vkCreateQueryPool(vk->dev, &qi, NULL, &qp));
        VK_CHECK(vkBeginCommandBuffer(vk->cmd, &cbi));
        vkCmdResetQueryPool(vk->cmd, qp, 0, 2);
        vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
        vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->pipe_layout, 0, 1,
                                &set, 0, NULL);
        vkCmdPushConstants(vk->cmd, vk->pipe_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                           CTSR_PUSH_BYTES, pcs);
        vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, qp, 0);
        for (int i = 0; i < bench_reps; i++) {
            vkCmdDispatch(vk->cmd, gx, gy, gz);
            vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                                 VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
        }
        vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, qp, 1);
        VK_CHECK(vkEndCommandBuffer(vk->cmd));
        if ((ret = ctsr_vk_submit_wait(vk, err, errlen)))
            goto fail;
        uint64_t ts[2];
        VK_CHECK(vkGetQueryPoolResults(vk->dev, qp, 0, 2, sizeof ts, ts, sizeof *ts,
                                       VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
        bench_ms = (double)(ts[1] - ts[0]) * vk->props.limits.timestampPeriod * 1e-6 / bench_reps;
    }
    if (out_act)
        from_padded(buf[out_binding].map, b[out_binding].px, b[out_binding].c, out, fp16);
    else
        memcpy(out, buf[out_binding].map, b[out_binding].px * b[out_binding].c * sizeof(float));
fail:
    if (qp)
        vkDestroyQueryPool(vk->dev, qp, NULL);
    if (pool)
        vkDestroyDescriptorPool(vk->dev, pool, NULL);
    if (pipe)
        vkDestroyPipeline(vk->dev, pipe, NULL);
    for (int i = 0; i < CTSR_BINDINGS; i++)
        ctsr_vk_buffer_destroy(vk, &buf[i]);
    return ret;
}

int ctsr_op_conv(ctsr_context *ctx, const float *in, int h, int w, const ctsr_layer *l, int act,
                 int mode, const float *film, float *out, char *err, size_t errlen)
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
    int32_t spec[7] = {ctx->wg_conv, c4(l->cin), c4(l->cout), l->k, act, mode,
                       ctx->vk.subgroup_shuffle};
    int32_t pc[10] = {w, h, woff, boff, 0};
    int ret = run_op(ctx, conv_shader(l->k, ctx->vk.subgroup_shuffle), spec, 7, b, 1, 1, pc, (uint32_t)cdiv(cdiv(w, 4), ctx->wg_conv),
                     (uint32_t)h, (uint32_t)cdiv(l->cout, 8), out, err, errlen);
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
    int32_t spec[7] = {ctx->wg_conv, c4(l->cin), c4(l->cout), 3, CTSR_ACT_NONE, 3,
                       ctx->vk.subgroup_shuffle};
    int32_t pc[10] = {w, h, woff, boff, 0, 2 * l->cout, (int32_t)tf, frame_w, rx, ry};
    int ret = run_op(ctx, conv_shader(3, ctx->vk.subgroup_shuffle), spec, 7, b, 1, 1, pc,
                     (uint32_t)cdiv(cdiv(w, 4), ctx->wg_conv), (uint32_t)h,
                     (uint32_t)cdiv(l->cout, 8), out, err, errlen);
    free(p.w);
    free(film);
    return ret;
}

int ctsr_op_layernorm(ctsr_context *ctx, const float *in, int h, int w, int c, const float *g,
                      const float *bb, float *out, char *err, size_t errlen)
{
    float *gb = calloc((size_t)2 * c4(c) * 4, sizeof *gb);
    if (!gb)
        return CTSR_E_NOMEM;
    memcpy(gb, g, (size_t)c * sizeof *gb);
    memcpy(gb + c4(c) * 4, bb, (size_t)c * sizeof *gb);
    const size_t px = (size_t)w * h;
    op_buf b[CTSR_BINDINGS] = {{in, px, c, 0}, {NULL, px, c, 0}, {gb, 0, 2 * c4(c) * 4, 1},
                               {NULL, 0, 4, 1}};
    int32_t spec[2] = {ctx->wg, c4(c)};
    int32_t pc[10] = {w, h, 0, c4(c) * 4};
    int ret = run_op(ctx, K_LN, spec, 2, b, 1, 1, pc, (uint32_t)cdiv((int)px, ctx->wg), 1, 1,
                     out, err, errlen);
    free(gb);
    return ret;
}

int ctsr_op_wattn(ctsr_context *ctx, const float *qkv, int h, int w, int c, int heads, int win,
                  float *out, char *err, size_t errlen)
{
    const size_t px = (size_t)w * h;
    op_buf b[CTSR_BINDINGS] = {{qkv, px, 3 * c, 0}, {NULL, px, c, 0}, {NULL, 0, 4, 1},
                               {NULL, 0, 4, 1}};
    int32_t spec[5] = {ctx->wg_conv, c4(c), heads, win,
                       wattn_shared_keys(ctx, c4(c) / heads, win)};
    int32_t pc[10] = {w, h};
    return run_op(ctx, K_WATTN, spec, 5, b, 1, 1, pc, (uint32_t)cdiv(w, ctx->wg_conv), (uint32_t)h,
                  1, out, err, errlen);
}

int ctsr_op_output(ctsr_context *ctx, const float *tail, const float *img, int h, int w, int s,
                   float *out, char *err, size_t errlen)
{
    const size_t px = (size_t)w * h;
    /* the output shader reads an RGBA image tile */
    float *rgba = calloc(px * 4, sizeof *rgba);
    if (!rgba)
        return CTSR_E_NOMEM;
    for (size_t i = 0; i < px; i++) {
        memcpy(rgba + i * 4, img + i * 3, 3 * sizeof *rgba);
        rgba[i * 4 + 3] = 1.0f;
    }
    op_buf b[CTSR_BINDINGS] = {{tail, px, 3 * s * s, 0},
                               {NULL, px * s * s, 3, 0},
                               {rgba, px, 4, 0},
                               {NULL, 0, 4, 1}};
    int32_t spec[4] = {ctx->wg, 1, s, c4(3 * s * s)};
    int32_t pc[10] = {w, h, 0, 0, w, h, 0, 0, w * s};
    /* the frame buffer holds tightly packed RGB floats: read it back raw */
    b[1].raw = 1;
    b[1].c = (int)(px * s * s * 3);
    b[1].px = 1;
    int ret = run_op(ctx, K_OUTPUT, spec, 4, b, 1, 0, pc, (uint32_t)cdiv(w * s, ctx->wg),
                     (uint32_t)(h * s), 1, out, err, errlen);
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
    int32_t spec[2] = {ctx->wg, 0};
    int32_t pc[10] = {w, h, 0, 0, w, h};
    return run_op(ctx, K_UNPACK, spec, 2, b, 1, 1, pc, (uint32_t)cdiv(w, ctx->wg), (uint32_t)h, 1,
                  out, err, errlen);
}

int ctsr_op_conv_bench(ctsr_context *ctx, int h, int w, int cin, int cout, int k, int reps,
                       double *ms, char *err, size_t errlen)
{
    const size_t px = (size_t)w * h;
    ctsr_layer l = {calloc((size_t)cout * cin * k * k, sizeof(float)), calloc((size_t)cout, sizeof(float)),
                    cout, cin, k};
    float *in = calloc(px * cin, sizeof(float)), *out = calloc(px * cout, sizeof(float));
    int ret = CTSR_E_NOMEM;
    if (l.w && l.b && in && out) {
        for (size_t i = 0; i < (size_t)cout * cin * k * k; i++)
            l.w[i] = (float)((i * 7919) % 13) / 13.0f - 0.5f;
        bench_reps = reps;
        ret = ctsr_op_conv(ctx, in, h, w, &l, CTSR_ACT_NONE, 0, NULL, out, err, errlen);
        bench_reps = 0;
        *ms = bench_ms;
    }
    free(l.w), free(l.b), free(in), free(out);
    return ret;
}
