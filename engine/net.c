/* libctsr: the context, the network as a list of dispatches, tiling and frame processing.
 *
 * Device tensors are NHWC with channels padded to a multiple of 4 (vec4 access). Per tile the
 * engine holds four of them, sized for the largest tile region:
 *   IMG  the input tile as RGBA floats (alpha rides along for the output's bilinear alpha)
 *   X    the residual stream (C channels)
 *   T1   scratch: conv1 output, QKV (3C), MLP hidden (hC), tail output (3*s*s)
 *   T2   scratch: LayerNorm output, attention output (C)
 * A frame is cut into tiles of T x T input pixels; each tile is computed on a region that adds
 * `overlap` pixels of context on every side (clipped to the frame) and only the tile's own
 * output pixels are written. The overlap is a multiple of the attention window and covers the
 * receptive field, and tiles start at multiples of the window, so attention windows in a region
 * are the frame's windows and tiled output equals untiled output up to float rounding. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tmap.h"

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

const char *ctsr_strerror(int code)
{
    switch (code) {
    case CTSR_OK: return "success";
    case CTSR_E_INVALID: return "invalid argument";
    case CTSR_E_NOMEM: return "out of memory";
    case CTSR_E_IO: return "I/O error";
    case CTSR_E_FORMAT: return "malformed model";
    case CTSR_E_NO_DEVICE: return "no Vulkan device";
    case CTSR_E_VULKAN: return "Vulkan error";
    case CTSR_E_NO_MODEL: return "no model loaded";
    default: return "unknown error";
    }
}

/* ---- context ---- */

int ctsr_context_create(const ctsr_options *opts, ctsr_context **out, char *err, size_t errlen)
{
    int ret;
    *out = NULL;
    ctsr_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    if (opts)
        ctx->opts = *opts;
    else
        ctx->opts.device_index = -1;
    if (ctx->opts.tile_size < 0) {
        ctsr_seterr(err, errlen, "tile size must be >= 0 (0 = automatic), got %d",
                    ctx->opts.tile_size);
        free(ctx);
        return CTSR_E_INVALID;
    }
    if (!ctx->opts.memory_budget)
        ctx->opts.memory_budget = DEFAULT_BUDGET;
#ifdef CTSR_FAULT_INJECTION
    const char *fault = getenv("CTSR_FAULT");
    if (fault && !strncmp(fault, "device-lost:", 12))
        ctx->fault_lost_at = atoi(fault + 12);
    else if (fault && !strncmp(fault, "alloc:", 6))
        ctx->fault_alloc_at = atoi(fault + 6);
#endif
    ctx->t = 0.5f;
    ctx->tmap_nexact = -1;
    if ((ret = ctsr_vk_init(&ctx->vk, ctx->opts.device_index, ctx->opts.validation, err, errlen))) {
        free(ctx);
        return ret;
    }
    snprintf(ctx->device_name, sizeof ctx->device_name, "%s", ctx->vk.props.deviceName);
    if (ctx->opts.precision == CTSR_PRECISION_FP16 && !ctx->vk.fp16_storage) {
        ctsr_seterr(err, errlen, "fp16 storage requested but %s does not support it",
                    ctx->device_name);
        ctsr_context_destroy(ctx);
        return CTSR_E_INVALID;
    }
    ctx->fp16 = ctx->opts.precision == CTSR_PRECISION_FP16 ||
                (ctx->opts.precision == CTSR_PRECISION_AUTO && !ctx->vk.is_cpu &&
                 ctx->vk.fp16_storage);
    ctx->act_bytes = ctx->fp16 ? 2 : 4;
    /* lavapipe runs 8 invocations as one vector and spreads whole workgroups over threads */
    ctx->wg_conv = ctx->vk.is_cpu ? 8 : 64;
    ctx->wg = 64;
    *out = ctx;
    return 0;
}

static void release_model(ctsr_context *ctx)
{
    ctsr_vk *vk = &ctx->vk;
    if (vk->dev)
        vkDeviceWaitIdle(vk->dev);
    for (int i = 0; i < ctx->npipes; i++)
        vkDestroyPipeline(vk->dev, ctx->pipes[i].pipe, NULL);
    ctx->npipes = 0;
    if (ctx->dpool)
        vkDestroyDescriptorPool(vk->dev, ctx->dpool, NULL);
    ctx->dpool = VK_NULL_HANDLE;
    ctx->nd = 0;
    for (int i = 0; i < B_COUNT; i++)
        ctsr_vk_buffer_destroy(vk, &ctx->buf[i]);
    ctx->region_px = 0;
    ctx->tmap_nexact = -1;
    ctx->tmap_dirty = 1;
    ctsr_model_free(ctx->model);
    ctx->model = NULL;
    free(ctx->film_host);
    ctx->film_host = NULL;
}

void ctsr_context_destroy(ctsr_context *ctx)
{
    if (!ctx)
        return;
    release_model(ctx);
    if (ctx->queries)
        vkDestroyQueryPool(ctx->vk.dev, ctx->queries, NULL);
    free(ctx->query_kind);
    free(ctx->tmap);
    ctsr_vk_destroy(&ctx->vk);
    free(ctx);
}

const char *ctsr_device_name(const ctsr_context *ctx) { return ctx->device_name; }
int ctsr_device_is_cpu(const ctsr_context *ctx) { return ctx->vk.is_cpu; }
int ctsr_scale(const ctsr_context *ctx) { return ctx->model ? ctx->model->cfg.scale : 0; }
const char *ctsr_model_config(const ctsr_context *ctx)
{
    return ctx->model ? ctx->model->config_json : NULL;
}
const char *ctsr_model_provenance(const ctsr_context *ctx)
{
    return ctx->model ? ctx->model->provenance : NULL;
}
double ctsr_model_macs_per_pixel(const ctsr_context *ctx)
{
    return ctx->model ? ctsr_config_macs_per_pixel(&ctx->model->cfg) : 0.0;
}
size_t ctsr_device_memory(const ctsr_context *ctx) { return ctx->vk.bytes_allocated; }
float ctsr_get_timestep(const ctsr_context *ctx) { return ctx->t; }
int ctsr_tile_overlap(const ctsr_context *ctx) { return ctx->overlap; }

void ctsr_set_timestep(ctsr_context *ctx, float t)
{
    if (!(t >= 0.0f)) /* also NaN */
        t = 0.0f;
    if (t > 1.0f)
        t = 1.0f;
    ctx->t = t;
    if (ctx->model && ctx->buf[B_FILM].map) {
        const ctsr_config *c = &ctx->model->cfg;
        ctsr_model_film(ctx->model, t, ctx->film_host);
        memcpy(ctx->buf[B_FILM].map, ctx->film_host, sizeof(float) * 2 * c->channels * c->blocks);
    }
}

int ctsr_set_tile_size(ctsr_context *ctx, int tile_size, char *err, size_t errlen)
{
    if (tile_size < 0) {
        ctsr_seterr(err, errlen, "tile size must be >= 0 (0 = automatic), got %d", tile_size);
        return CTSR_E_INVALID;
    }
    ctx->opts.tile_size = tile_size;
    return 0;
}

/* ---- timestep map (tmap.h) ---- */

#define MAX_FRAME_EDGE 16384

static int get_pipe(ctsr_context *ctx, int kind, const int32_t *spec, int nspec, char *err,
                    size_t errlen);
static void write_descriptors(ctsr_context *ctx);

int ctsr_set_timestep_map(ctsr_context *ctx, const float *map, int w, int h, size_t stride,
                          char *err, size_t errlen)
{
    if (!map) {
        free(ctx->tmap);
        ctx->tmap = NULL;
        ctx->tmap_w = ctx->tmap_h = 0;
        return 0;
    }
    if (w <= 0 || h <= 0 || w > MAX_FRAME_EDGE || h > MAX_FRAME_EDGE) {
        ctsr_seterr(err, errlen, "invalid timestep map size %dx%d (1..%d pixels a side)", w, h,
                    MAX_FRAME_EDGE);
        return CTSR_E_INVALID;
    }
    if (stride < (size_t)w * sizeof(float) || stride % sizeof(float)) {
        ctsr_seterr(err, errlen, "timestep map stride %zu bytes: must hold a row of %d floats "
                    "and be a multiple of %zu", stride, w, sizeof(float));
        return CTSR_E_INVALID;
    }
    float *copy = malloc((size_t)w * h * sizeof *copy);
    if (!copy) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    for (int y = 0; y < h; y++) {
        const float *row = (const float *)((const char *)map + (size_t)y * stride);
        for (int x = 0; x < w; x++) {
            float v = row[x];
            if (isnan(v)) {
                free(copy);
                ctsr_seterr(err, errlen, "timestep map: NaN at pixel (%d, %d)", x, y);
                return CTSR_E_INVALID;
            }
            copy[(size_t)y * w + x] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
    }
    free(ctx->tmap);
    ctx->tmap = copy;
    ctx->tmap_w = w;
    ctx->tmap_h = h;
    ctx->tmap_dirty = 1;
    return 0;
}

int ctsr_default_transition(const ctsr_context *ctx)
{
    return ctx->model ? ctx->overlap : 0;
}

/* floats of B_FILM before the level positions: the uniform FiLM vectors and the table */
static size_t tmap_table_floats(const ctsr_config *c)
{
    return (size_t)2 * c->channels * c->blocks * (1 + CTSR_TMAP_LEVELS);
}

/* Everything a frame with the map needs: the MODE 3 pipelines, B_FILM large enough, the
 * levels' FiLM vectors and the level positions (when the map or the model changed). */
static int tmap_prepare(ctsr_context *ctx, char *err, size_t errlen)
{
    int ret;
    const ctsr_config *c = &ctx->model->cfg;
    const size_t F = (size_t)2 * c->channels * c->blocks, npx = (size_t)ctx->tmap_w * ctx->tmap_h;
    const size_t bytes = (tmap_table_floats(c) + npx) * sizeof(float);
    for (int i = 0; i < ctx->nd; i++) {
        dispatch *d = &ctx->d[i];
        if (!d->film || d->pipe_tmap >= 0)
            continue;
        int32_t spec[7];
        memcpy(spec, ctx->pipes[d->pipe[0]].spec, sizeof spec);
        spec[5] = 3; /* MODE 3: FiLM per pixel */
        int pi = get_pipe(ctx, ctx->pipes[d->pipe[0]].kind, spec, 7, err, errlen);
        if (pi < 0)
            return pi;
        d->pipe_tmap = pi;
    }
    if (ctx->buf[B_FILM].size < bytes) {
        if (bytes > ctx->vk.props.limits.maxStorageBufferRange) {
            ctsr_seterr(err, errlen, "a %dx%d timestep map needs a %zu-byte buffer, over the "
                        "device's limit of %llu", ctx->tmap_w, ctx->tmap_h, bytes,
                        (unsigned long long)ctx->vk.props.limits.maxStorageBufferRange);
            return CTSR_E_INVALID;
        }
        ctsr_buffer nb = {0};
        if ((ret = ctsr_vk_buffer_create(&ctx->vk, &nb, bytes, 1, err, errlen)))
            return ret;
        /* the table as vec4 texels (binding CTSR_FILM_TEXEL_BINDING) */
        if ((ret = ctsr_vk_buffer_view_part(&ctx->vk, &nb, tmap_table_floats(c) * sizeof(float),
                                            err, errlen))) {
            ctsr_vk_buffer_destroy(&ctx->vk, &nb);
            return ret;
        }
        memcpy(nb.map, ctx->film_host, F * sizeof(float));
        ctsr_vk_buffer_destroy(&ctx->vk, &ctx->buf[B_FILM]);
        ctx->buf[B_FILM] = nb;
        write_descriptors(ctx);
        ctx->tmap_nexact = -1;
        ctx->tmap_dirty = 1;
    }
    float *fb = ctx->buf[B_FILM].map, *table = fb + F;
    if (ctx->tmap_dirty) {
        float levels[CTSR_TMAP_LEVELS];
        int n = ctsr_tmap_levels(ctx->tmap, ctx->tmap_w, ctx->tmap_h, levels);
        if (n < 0) {
            ctsr_seterr(err, errlen, "out of memory");
            return n;
        }
        /* FiLM vectors of the levels: only those that changed (ROI maps keep theirs) */
        for (int k = 0; k < n; k++)
            if (k >= ctx->tmap_nexact || ctx->tmap_exact[k] != levels[k])
                ctsr_model_film(ctx->model, levels[k], table + (size_t)k * F);
        memcpy(ctx->tmap_exact, levels, (size_t)n * sizeof *levels);
        ctx->tmap_nexact = n;
        ctsr_tmap_positions(ctx->tmap, npx, levels, n, fb + tmap_table_floats(c));
        ctx->tmap_dirty = 0;
    }
    return 0;
}

/* ---- model -> weights buffer and dispatch list ---- */

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

static int get_pipe(ctsr_context *ctx, int kind, const int32_t *spec, int nspec, char *err,
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
    int pi = get_pipe(ctx, conv_shader(l->k, ctx->vk.subgroup_shuffle), spec, 7, err, errlen);
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
    int pi = get_pipe(ctx, K_LN, spec, 2, err, errlen);
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

static int build_network(ctsr_context *ctx, char *err, size_t errlen)
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
            TRY(d->pipe[f] = get_pipe(ctx, f >= FMT_I420 ? K_UNPACK_YUV : K_UNPACK, spec, 2,
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
            TRY(d->pipe[0] = get_pipe(ctx, K_WATTN, spec, 5, err, errlen));
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
            TRY(d->pipe[f] = get_pipe(ctx, f >= FMT_I420 ? K_OUTPUT_YUV : K_OUTPUT, spec, 4,
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
static int network_overlap(const ctsr_config *c)
{
    int n_attn = 0;
    for (int b = 0; b < c->blocks; b++)
        n_attn += (c->attn_mask >> b) & 1;
    /* head, 2 convs per block, w-1 per attention, tail, and 1 for the bilinear residual */
    int r = 1 + 2 * c->blocks + n_attn * (c->window - 1) + 1 + 1;
    return cdiv(r, c->window) * c->window;
}

static int alloc_descriptors(ctsr_context *ctx, char *err, size_t errlen)
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

/* Points every descriptor set at the current buffers (after any buffer reallocation). */
static void write_descriptors(ctsr_context *ctx)
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

/* Makes sure the tile buffers hold `px` region pixels. */
static int ensure_tile_buffers(ctsr_context *ctx, size_t px, char *err, size_t errlen)
{
    int ret;
    const ctsr_config *c = &ctx->model->cfg;
    const size_t vec = 4 * (size_t)ctx->act_bytes;
    const VkDeviceSize limit = ctx->vk.props.limits.maxStorageBufferRange;
    if (px <= ctx->region_px)
        return 0;
    const size_t sizes[] = {[B_IMG] = px * vec, [B_X] = px * c4(c->channels) * vec,
                            [B_T1] = px * ctx->t1_c4 * vec, [B_T2] = px * c4(c->channels) * vec};
    for (int b = B_IMG; b <= B_T2; b++)
        if (sizes[b] > limit) {
            ctsr_seterr(err, errlen, "a tile region of %zu pixels needs a %zu-byte buffer, over "
                        "the device's limit of %llu: use a smaller tile size", px, sizes[b],
                        (unsigned long long)limit);
            return CTSR_E_INVALID;
        }
    ctx->region_px = 0;
    for (int b = B_IMG; b <= B_T2; b++) {
        ctsr_vk_buffer_destroy(&ctx->vk, &ctx->buf[b]);
        if ((ret = ctsr_vk_buffer_create(&ctx->vk, &ctx->buf[b], sizes[b], 0, err, errlen)) ||
            (ret = ctsr_vk_buffer_view(&ctx->vk, &ctx->buf[b], ctx->fp16, err, errlen)))
            return ret;
    }
    ctx->region_px = px;
    write_descriptors(ctx);
    return 0;
}

/* Makes sure the (host-visible) frame buffers hold the given bytes. */
static int ensure_frame_buffers(ctsr_context *ctx, size_t in_bytes, size_t out_bytes, char *err,
                                size_t errlen)
{
    int ret;
    const VkDeviceSize limit = ctx->vk.props.limits.maxStorageBufferRange;
    const size_t want[2] = {in_bytes, out_bytes};
#ifdef CTSR_FAULT_INJECTION
    /* every frame comes through here once, before run_frame */
    if (++ctx->frames == ctx->fault_alloc_at) {
        ctsr_vk_buffer_destroy(&ctx->vk, &ctx->buf[B_FRAME_IN]);
        ctsr_seterr(err, errlen, "vkAllocateMemory failed: VK_ERROR_OUT_OF_DEVICE_MEMORY "
                    "(injected by CTSR_FAULT)");
        return CTSR_E_NOMEM;
    }
#endif
    for (int i = 0; i < 2; i++) {
        ctsr_buffer *b = &ctx->buf[B_FRAME_IN + i];
        if (b->buf && b->size >= want[i])
            continue;
        if (want[i] > limit) {
            ctsr_seterr(err, errlen, "the frame needs a %zu-byte buffer, over the device's "
                        "limit of %llu", want[i], (unsigned long long)limit);
            return CTSR_E_INVALID;
        }
        ctsr_vk_buffer_destroy(&ctx->vk, b);
        if ((ret = ctsr_vk_buffer_create(&ctx->vk, b, want[i], 1, err, errlen)))
            return ret;
        if (ctx->region_px)
            write_descriptors(ctx);
    }
    return 0;
}

/* ---- tiling ---- */

int ctsr_effective_tile_size(const ctsr_context *ctx, int w, int h)
{
    if (!ctx->model)
        return 0;
    const ctsr_config *c = &ctx->model->cfg;
    const int win = c->window, P = ctx->overlap;
    int t = ctx->opts.tile_size;
    if (t <= 0) {
        /* bytes per region pixel of the four tile tensors */
        size_t bpp = (size_t)4 * ctx->act_bytes * (1 + 2 * c4(c->channels) + ctx->t1_c4);
        size_t px = ctx->opts.memory_budget / bpp;
        size_t lim = ctx->vk.props.limits.maxStorageBufferRange / ((size_t)4 * ctx->act_bytes * ctx->t1_c4);
        size_t glim = (size_t)ctx->vk.props.limits.maxComputeWorkGroupCount[0] * ctx->wg;
        if (px > lim)
            px = lim;
        if (px > glim)
            px = glim;
        if ((size_t)w * h <= px)
            return w > h ? w : h; /* the whole frame fits: one tile */
        int edge = (int)sqrt((double)px);
        t = edge - 2 * P;
        t -= t % win;
        if (t < win)
            t = win;
    } else {
        /* a tile larger than the frame is the whole frame (also keeps INT_MAX from
         * overflowing below) */
        const int edge = w > h ? w : h;
        if (t > edge)
            t = edge > 0 ? edge : 1;
        t = cdiv(t, win) * win;
    }
    /* tile interiors start at even output pixels (YUV 4:2:0 chroma blocks): with an odd
     * scale an odd tile edge (odd window) becomes even by adding a window */
    if (t % 2 && c->scale % 2)
        t += win;
    return t;
}

typedef struct tile {
    int rx, ry, rw, rh; /* region in the frame */
    int ix, iy, iw, ih; /* interior in the frame */
} tile;

static int tile_iter(const ctsr_context *ctx, int w, int h, int T, int index, tile *t)
{
    const int nx = cdiv(w, T), ny = cdiv(h, T), P = ctx->overlap;
    if (index >= nx * ny)
        return 0;
    t->ix = (index % nx) * T;
    t->iy = (index / nx) * T;
    t->iw = t->ix + T < w ? T : w - t->ix;
    t->ih = t->iy + T < h ? T : h - t->iy;
    int x1 = t->ix + t->iw + P, y1 = t->iy + t->ih + P;
    t->rx = t->ix - P > 0 ? t->ix - P : 0;
    t->ry = t->iy - P > 0 ? t->iy - P : 0;
    t->rw = (x1 < w ? x1 : w) - t->rx;
    t->rh = (y1 < h ? y1 : h) - t->ry;
    if (nx == 1 && ny == 1) { /* untiled: no context needed */
        t->rx = t->ry = 0;
        t->rw = w;
        t->rh = h;
    }
    return 1;
}

static void timestamp(ctsr_context *ctx, int kind)
{
    if (!ctx->profiling || ctx->query_count >= ctx->query_cap)
        return;
    ctx->query_kind[ctx->query_count] = (uint8_t)kind;
    vkCmdWriteTimestamp(ctx->vk.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, ctx->queries,
                        ctx->query_count++);
}

/* push constants of the YUV shaders: kr, kb and the flags (YUV_* in common.glsl) */
static void yuv_push(const ctsr_yuv *y, int32_t *pc)
{
    const float kr = (float)y->kr, kb = (float)y->kb;
    memcpy(pc, &kr, 4);
    memcpy(pc + 1, &kb, 4);
    pc[2] = (y->full_range ? 1 : 0) | (y->chroma_cosited_h ? 2 : 0) | (y->chroma_cosited_v ? 4 : 0);
}

static void record_tile(ctsr_context *ctx, const tile *t, int fmt, int frame_w, int frame_h)
{
    VkCommandBuffer cmd = ctx->vk.cmd;
    const int S = ctx->model->cfg.scale;
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    for (int i = 0; i < ctx->nd; i++) {
        const dispatch *d = &ctx->d[i];
        int32_t pc[16] = {t->rw, t->rh};
        uint32_t gx = 1, gy = 1, gz = 1;
        int pipe = d->pipe[0];
        switch (d->kind) {
        case K_UNPACK:
            pipe = d->pipe[fmt];
            pc[2] = t->rx;
            pc[3] = t->ry;
            pc[4] = frame_w;
            pc[5] = frame_h;
            if (fmt >= FMT_I420)
                yuv_push(&ctx->yuv_in, pc + 6);
            gx = (uint32_t)cdiv(t->rw, ctx->wg);
            gy = (uint32_t)t->rh;
            break;
        case K_CONV:
            memcpy(pc + 2, d->pc, 3 * sizeof(int32_t));
            if (d->film && ctx->tmap_frame) { /* FiLM per pixel from the map's positions */
                const ctsr_config *c = &ctx->model->cfg;
                const int F = 2 * c->channels * c->blocks;
                pipe = d->pipe_tmap;
                pc[4] = F + d->pc[2];
                pc[5] = F;
                pc[6] = (int32_t)tmap_table_floats(c);
                pc[7] = frame_w;
                pc[8] = t->rx;
                pc[9] = t->ry;
            }
            ctx->frame_conv_macs += (double)t->rw * t->rh * d->macs_per_px;
            gx = (uint32_t)cdiv(cdiv(t->rw, 4), ctx->wg_conv);
            gy = (uint32_t)t->rh;
            gz = (uint32_t)d->groups_z;
            break;
        case K_LN:
            memcpy(pc + 2, d->pc, 2 * sizeof(int32_t));
            gx = (uint32_t)cdiv(t->rw * t->rh, ctx->wg);
            break;
        case K_WATTN:
            gx = (uint32_t)cdiv(t->rw, ctx->wg_conv);
            gy = (uint32_t)t->rh;
            break;
        case K_OUTPUT:
            pipe = d->pipe[fmt];
            pc[2] = t->ix - t->rx;
            pc[3] = t->iy - t->ry;
            pc[4] = t->iw;
            pc[5] = t->ih;
            pc[6] = t->ix;
            pc[7] = t->iy;
            pc[8] = frame_w * S;
            if (fmt >= FMT_I420) { /* one invocation per 2x2 block */
                pc[9] = frame_h * S;
                yuv_push(&ctx->yuv_out, pc + 10);
                gx = (uint32_t)cdiv(cdiv(t->iw * S, 2), ctx->wg);
                gy = (uint32_t)cdiv(t->ih * S, 2);
            } else {
                gx = (uint32_t)cdiv(t->iw * S, ctx->wg);
                gy = (uint32_t)(t->ih * S);
            }
            break;
        }
        vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ctx->pipes[pipe].pipe);
        vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, ctx->vk.pipe_layout, 0, 1,
                                &d->set, 0, NULL);
        vkCmdPushConstants(cmd, ctx->vk.pipe_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0,
                           CTSR_PUSH_BYTES, pc);
        vkCmdDispatch(cmd, gx, gy, gz);
        timestamp(ctx, d->kind);
        vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    }
}

static int ensure_queries(ctsr_context *ctx, uint32_t n, char *err, size_t errlen)
{
    int ret = 0;
    if (n <= ctx->query_cap)
        return 0;
    if (ctx->queries)
        vkDestroyQueryPool(ctx->vk.dev, ctx->queries, NULL);
    ctx->queries = VK_NULL_HANDLE;
    ctx->query_cap = 0;
    uint8_t *k = realloc(ctx->query_kind, n);
    if (!k)
        return CTSR_E_NOMEM;
    ctx->query_kind = k;
    VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                .queryCount = n};
    VK_CHECK(vkCreateQueryPool(ctx->vk.dev, &qi, NULL, &ctx->queries));
    ctx->query_cap = n;
fail:
    return ret;
}

static int read_profile(ctsr_context *ctx, int ntiles, char *err, size_t errlen)
{
    int ret = 0;
    const uint32_t n = ctx->query_count;
    uint64_t *ts = calloc(n ? n : 1, sizeof *ts);
    if (!ts)
        return CTSR_E_NOMEM;
    VK_CHECK(vkGetQueryPoolResults(ctx->vk.dev, ctx->queries, 0, n, n * sizeof *ts, ts,
                                   sizeof *ts, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    const double ns = ctx->vk.props.limits.timestampPeriod * 1e-6; /* ticks -> ms */
    ctsr_profile *p = &ctx->profile;
    memset(p, 0, sizeof *p);
    for (uint32_t i = 1; i < n; i++) {
        double ms = (double)(ts[i] - ts[i - 1]) * ns;
        switch (ctx->query_kind[i]) {
        case K_CONV: p->conv_ms += ms; break;
        case K_WATTN: p->attn_ms += ms; break;
        case K_LN: p->norm_ms += ms; break;
        default: p->io_ms += ms; break;
        }
    }
    p->total_ms = n > 1 ? (double)(ts[n - 1] - ts[0]) * ns : 0.0;
    p->conv_macs = ctx->frame_conv_macs;
    p->tiles = ntiles;
fail:
    free(ts);
    return ret;
}

int ctsr_set_profiling(ctsr_context *ctx, int on, char *err, size_t errlen)
{
    if (on && (!ctx->vk.props.limits.timestampComputeAndGraphics ||
               ctx->vk.props.limits.timestampPeriod <= 0)) {
        ctsr_seterr(err, errlen, "%s has no compute timestamps", ctx->device_name);
        return CTSR_E_INVALID;
    }
    ctx->profiling = on != 0;
    return 0;
}

int ctsr_get_profile(const ctsr_context *ctx, ctsr_profile *p)
{
    *p = ctx->profile;
    return ctx->profiling ? 0 : CTSR_E_INVALID;
}

/* Runs the network over a frame already in B_FRAME_IN; result in B_FRAME_OUT. */
static int run_frame(ctsr_context *ctx, int w, int h, int fmt, char *err, size_t errlen)
{
    int ret = 0;
    const int T = ctsr_effective_tile_size(ctx, w, h);
    tile t;
    size_t px = 0; /* the largest tile region */
    int ntiles = 0;
    for (; tile_iter(ctx, w, h, T, ntiles, &t); ntiles++)
        if ((size_t)t.rw * t.rh > px)
            px = (size_t)t.rw * t.rh;
    const uint32_t *maxg = ctx->vk.props.limits.maxComputeWorkGroupCount;
    if (px > (size_t)maxg[0] * ctx->wg || (size_t)h * ctx->model->cfg.scale > maxg[1]) {
        ctsr_seterr(err, errlen, "a %dx%d frame with %d-pixel tiles exceeds the device's "
                    "dispatch limits: use a smaller tile size", w, h, T);
        return CTSR_E_INVALID;
    }
    if ((ret = ensure_tile_buffers(ctx, px, err, errlen)))
        return ret;
    ctx->tmap_frame = ctx->tmap && !ctx->warming_up;
    if (ctx->tmap_frame && (w != ctx->tmap_w || h != ctx->tmap_h)) {
        ctsr_seterr(err, errlen, "the timestep map is %dx%d but the frame is %dx%d (set a map "
                    "of the frame's size, or clear it with NULL)", ctx->tmap_w, ctx->tmap_h, w,
                    h);
        return CTSR_E_INVALID;
    }
    if (ctx->tmap_frame && (ret = tmap_prepare(ctx, err, errlen)))
        return ret;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    if (ctx->profiling && (ret = ensure_queries(ctx, (uint32_t)(ntiles * ctx->nd + 1), err, errlen)))
        return ret;
    VK_CHECK(vkBeginCommandBuffer(ctx->vk.cmd, &bi));
    ctx->frame_conv_macs = 0;
    ctx->query_count = 0;
    if (ctx->profiling) {
        vkCmdResetQueryPool(ctx->vk.cmd, ctx->queries, 0, ctx->query_cap);
        timestamp(ctx, K_COUNT);
    }
    for (int i = 0; tile_iter(ctx, w, h, T, i, &t); i++)
        record_tile(ctx, &t, fmt, w, h);
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT};
    vkCmdPipelineBarrier(ctx->vk.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VK_CHECK(vkEndCommandBuffer(ctx->vk.cmd));
#ifdef CTSR_FAULT_INJECTION
    if (ctx->lost || (ctx->fault_lost_at && ctx->frames == ctx->fault_lost_at)) {
        ctx->lost = 1;
        ctsr_seterr(err, errlen, "vkQueueSubmit failed: VK_ERROR_DEVICE_LOST (injected by "
                    "CTSR_FAULT)");
        return CTSR_E_VULKAN;
    }
#endif
    ret = ctsr_vk_submit_wait(&ctx->vk, err, errlen);
    if (!ret && ctx->profiling)
        ret = read_profile(ctx, ntiles, err, errlen);
fail:
    return ret;
}

int ctsr_check_frame_size(const ctsr_context *ctx, int layout, int w, int h, char *err,
                          size_t errlen)
{
    if (!ctx->model) {
        ctsr_seterr(err, errlen, "no model loaded");
        return CTSR_E_NO_MODEL;
    }
    if (w <= 0 || h <= 0 || w > MAX_FRAME_EDGE || h > MAX_FRAME_EDGE) {
        ctsr_seterr(err, errlen, "invalid frame %dx%d (1..%d pixels a side)", w, h,
                    MAX_FRAME_EDGE);
        return CTSR_E_INVALID;
    }
    const uint64_t S = (uint64_t)ctx->model->cfg.scale, W = (uint64_t)w * S, H = (uint64_t)h * S;
    uint64_t in_bytes, out_bytes;
    switch (layout) {
    case CTSR_FRAME_RGBA8:
        in_bytes = (uint64_t)w * h * 4, out_bytes = W * H * 4;
        break;
    case CTSR_FRAME_RGB_F32:
        in_bytes = (uint64_t)w * h * 12, out_bytes = W * H * 12;
        break;
    case CTSR_FRAME_YUV420:
        in_bytes = (uint64_t)w * h + 2 * (uint64_t)((w + 1) / 2) * ((h + 1) / 2);
        out_bytes = W * H + 2 * ((W + 1) / 2) * ((H + 1) / 2);
        break;
    default:
        ctsr_seterr(err, errlen, "unknown frame layout %d", layout);
        return CTSR_E_INVALID;
    }
    const uint64_t limit = ctx->vk.props.limits.maxStorageBufferRange;
    if (in_bytes > limit || out_bytes > limit) {
        ctsr_seterr(err, errlen, "a %dx%d frame upscaled to %llux%llu needs a %llu-byte %s "
                    "buffer, over %s's limit of %llu bytes (maxStorageBufferRange)", w, h,
                    (unsigned long long)W, (unsigned long long)H,
                    (unsigned long long)(in_bytes > limit ? in_bytes : out_bytes),
                    in_bytes > limit ? "input" : "output", ctx->device_name,
                    (unsigned long long)limit);
        return CTSR_E_INVALID;
    }
    if (H > ctx->vk.props.limits.maxComputeWorkGroupCount[1]) {
        ctsr_seterr(err, errlen, "a %dx%d frame has %llu output rows, over %s's limit of %u "
                    "(maxComputeWorkGroupCount[1])", w, h, (unsigned long long)H,
                    ctx->device_name, ctx->vk.props.limits.maxComputeWorkGroupCount[1]);
        return CTSR_E_INVALID;
    }
    return 0;
}

/* rows rows of row_bytes each, stride apart: the stride holds a row and the last row's end
 * fits in a size_t */
static int stride_ok(size_t stride, size_t row_bytes, int rows)
{
    return stride >= row_bytes &&
           (rows <= 1 || stride <= (SIZE_MAX - row_bytes) / (size_t)(rows - 1));
}

static int check_frame(ctsr_context *ctx, int layout, const void *in, int w, int h,
                       const void *out, char *err, size_t errlen)
{
    if (!ctx->model) {
        ctsr_seterr(err, errlen, "no model loaded");
        return CTSR_E_NO_MODEL;
    }
    if (!in || !out) {
        ctsr_seterr(err, errlen, "NULL frame");
        return CTSR_E_INVALID;
    }
    return ctsr_check_frame_size(ctx, layout, w, h, err, errlen);
}

int ctsr_process_rgba8(ctsr_context *ctx, const uint8_t *in, int w, int h, size_t in_stride,
                       uint8_t *out, size_t out_stride, char *err, size_t errlen)
{
    int ret = check_frame(ctx, CTSR_FRAME_RGBA8, in, w, h, out, err, errlen);
    if (ret)
        return ret;
    const int S = ctx->model->cfg.scale;
    if (!stride_ok(in_stride, (size_t)w * 4, h) || !stride_ok(out_stride, (size_t)w * S * 4, h * S)) {
        ctsr_seterr(err, errlen, "stride %zu / %zu too small for a %d-pixel RGBA row, or "
                    "too large to address %d rows", in_stride, out_stride, w, h);
        return CTSR_E_INVALID;
    }
    if ((ret = ensure_frame_buffers(ctx, (size_t)w * h * 4, (size_t)w * h * S * S * 4, err,
                                    errlen)))
        return ret;
    uint8_t *fin = ctx->buf[B_FRAME_IN].map;
    for (int y = 0; y < h; y++)
        memcpy(fin + (size_t)y * w * 4, in + y * in_stride, (size_t)w * 4);
    if ((ret = run_frame(ctx, w, h, FMT_RGBA8, err, errlen)))
        return ret;
    const uint8_t *fout = ctx->buf[B_FRAME_OUT].map;
    for (int y = 0; y < h * S; y++)
        memcpy(out + y * out_stride, fout + (size_t)y * w * S * 4, (size_t)w * S * 4);
    return 0;
}

int ctsr_process_rgb_f32(ctsr_context *ctx, const float *in, int w, int h, float *out,
                         char *err, size_t errlen)
{
    int ret = check_frame(ctx, CTSR_FRAME_RGB_F32, in, w, h, out, err, errlen);
    if (ret)
        return ret;
    const int S = ctx->model->cfg.scale;
    if ((ret = ensure_frame_buffers(ctx, (size_t)w * h * 12, (size_t)w * h * S * S * 12, err,
                                    errlen)))
        return ret;
    memcpy(ctx->buf[B_FRAME_IN].map, in, (size_t)w * h * 12);
    if ((ret = run_frame(ctx, w, h, FMT_RGB_F32, err, errlen)))
        return ret;
    memcpy(out, ctx->buf[B_FRAME_OUT].map, (size_t)w * h * S * S * 12);
    return 0;
}

int ctsr_supports_yuv(const ctsr_context *ctx) { return ctx->vk.storage8; }

static int check_yuv(const ctsr_yuv *f, const char *side, char *err, size_t errlen)
{
    if (!f || (f->format != CTSR_YUV_I420 && f->format != CTSR_YUV_NV12)) {
        ctsr_seterr(err, errlen, "%s YUV format must be CTSR_YUV_I420 or CTSR_YUV_NV12", side);
        return CTSR_E_INVALID;
    }
    if (!(f->kr > 0.0 && f->kb > 0.0 && f->kr + f->kb < 1.0)) {
        ctsr_seterr(err, errlen, "%s luma coefficients kr = %g, kb = %g out of range", side,
                    f->kr, f->kb);
        return CTSR_E_INVALID;
    }
    return 0;
}

/* Copies planes between strided memory and the tightly packed device layout (to_dev: host
 * -> device). Checks the pointers and strides first when check is set. */
static int yuv_planes(const ctsr_yuv *f, uint8_t *dev, uint8_t *const planes[3],
                      const size_t strides[3], int w, int h, int to_dev, const char *side,
                      char *err, size_t errlen)
{
    const int cw = (w + 1) / 2, ch = (h + 1) / 2;
    const int np = f->format == CTSR_YUV_I420 ? 3 : 2;
    const size_t row[3] = {(size_t)w, (size_t)cw * (np == 3 ? 1 : 2), (size_t)cw};
    const int rows[3] = {h, ch, ch};
    for (int p = 0; p < np; p++)
        if (!planes[p] || !stride_ok(strides[p], row[p], rows[p])) {
            ctsr_seterr(err, errlen, "%s plane %d: %s", side, p,
                        planes[p] ? "stride too small for the row or too large to address "
                                    "the plane" : "NULL");
            return CTSR_E_INVALID;
        }
    if (!dev)
        return 0;
    for (int p = 0; p < np; p++) {
        for (int y = 0; y < rows[p]; y++) {
            if (to_dev)
                memcpy(dev + y * row[p], planes[p] + y * strides[p], row[p]);
            else
                memcpy(planes[p] + y * strides[p], dev + y * row[p], row[p]);
        }
        dev += rows[p] * row[p];
    }
    return 0;
}

int ctsr_process_yuv(ctsr_context *ctx, const ctsr_yuv *in_fmt, const uint8_t *const in_planes[3],
                     const size_t in_strides[3], int w, int h, const ctsr_yuv *out_fmt,
                     uint8_t *const out_planes[3], const size_t out_strides[3], char *err,
                     size_t errlen)
{
    int ret = check_frame(ctx, CTSR_FRAME_YUV420, in_planes, w, h, out_planes, err, errlen);
    if (ret)
        return ret;
    if (!ctx->vk.storage8) {
        ctsr_seterr(err, errlen, "%s has no 8-bit storage buffers (storageBuffer8BitAccess): "
                    "YUV frames cannot be converted in shaders; convert to RGBA on the host",
                    ctx->device_name);
        return CTSR_E_INVALID;
    }
    if ((ret = check_yuv(in_fmt, "input", err, errlen)) ||
        (ret = check_yuv(out_fmt, "output", err, errlen)))
        return ret;
    if (in_fmt->format != out_fmt->format) {
        ctsr_seterr(err, errlen, "input and output YUV formats differ");
        return CTSR_E_INVALID;
    }
    if (!in_strides || !out_strides) {
        ctsr_seterr(err, errlen, "NULL strides");
        return CTSR_E_INVALID;
    }
    const int S = ctx->model->cfg.scale, W = w * S, H = h * S;
    if ((ret = yuv_planes(in_fmt, NULL, (uint8_t *const *)in_planes, in_strides, w, h, 1,
                          "input", err, errlen)) ||
        (ret = yuv_planes(out_fmt, NULL, out_planes, out_strides, W, H, 0, "output", err,
                          errlen)))
        return ret;
    const size_t in_bytes = (size_t)w * h + (size_t)2 * ((w + 1) / 2) * ((h + 1) / 2);
    const size_t out_bytes = (size_t)W * H + (size_t)2 * ((W + 1) / 2) * ((H + 1) / 2);
    if ((ret = ensure_frame_buffers(ctx, in_bytes, out_bytes, err, errlen)))
        return ret;
    yuv_planes(in_fmt, ctx->buf[B_FRAME_IN].map, (uint8_t *const *)in_planes, in_strides, w, h,
               1, "input", err, errlen);
    ctx->yuv_in = *in_fmt;
    ctx->yuv_out = *out_fmt;
    if ((ret = run_frame(ctx, w, h, in_fmt->format == CTSR_YUV_I420 ? FMT_I420 : FMT_NV12, err,
                         errlen)))
        return ret;
    yuv_planes(out_fmt, ctx->buf[B_FRAME_OUT].map, out_planes, out_strides, W, H, 0, "output",
               err, errlen);
    return 0;
}

/* ---- loading ---- */

/* Builds everything for model m (which the context then owns). On failure releases m and
 * all device state. */
static int setup_model(ctsr_context *ctx, ctsr_model *m, char *err, size_t errlen)
{
    int ret;
    ctx->model = m;
    const ctsr_config *c = &m->cfg;
    int t1 = 3 * c->channels;
    if (c->mlp_ratio * c->channels > t1)
        t1 = c->mlp_ratio * c->channels;
    if (3 * c->scale * c->scale > t1)
        t1 = 3 * c->scale * c->scale;
    ctx->t1_c4 = c4(t1);
    ctx->overlap = network_overlap(c);
    ctx->film_host = calloc((size_t)2 * c->channels * c->blocks, sizeof(float));
    if (!ctx->film_host) {
        ctsr_seterr(err, errlen, "out of memory");
        ret = CTSR_E_NOMEM;
        goto fail;
    }
    if ((ret = build_network(ctx, err, errlen)) || (ret = alloc_descriptors(ctx, err, errlen)))
        goto fail;
    ctsr_set_timestep(ctx, ctx->t);

    /* warm-up: lavapipe compiles each pipeline at its first dispatch; run both formats on
     * a small frame so that the first real frame is not slow */
#ifdef CTSR_FAULT_INJECTION
    ctx->frames = INT_MIN / 2; /* no injected fault in the warm-up */
#endif
    ctx->warming_up = 1;
    {
        const int wu = c->window + 3;
        float *img = calloc((size_t)wu * wu * 3 * (1 + c->scale * c->scale), sizeof(float));
        if (!img) {
            ret = CTSR_E_NOMEM;
            goto fail;
        }
        uint8_t *rgba = (uint8_t *)img;
        ret = ctsr_process_rgb_f32(ctx, img, wu, wu, img + (size_t)wu * wu * 3, err, errlen);
        if (!ret)
            ret = ctsr_process_rgba8(ctx, rgba, wu, wu, (size_t)wu * 4,
                                     (uint8_t *)(img + (size_t)wu * wu * 3),
                                     (size_t)wu * c->scale * 4, err, errlen);
        /* the YUV shaders too (I420 and NV12), reading and writing the same zeroed bytes */
        for (int f = CTSR_YUV_I420; !ret && ctx->vk.storage8 && f <= CTSR_YUV_NV12; f++) {
            const ctsr_yuv yuv = {.format = f, .kr = 0.299, .kb = 0.114};
            uint8_t *big = (uint8_t *)(img + (size_t)wu * wu * 3);
            const int W = wu * c->scale, cw = (W + 1) / 2;
            const uint8_t *const ip[3] = {rgba, rgba, rgba};
            uint8_t *const op[3] = {big, big, big};
            const size_t is[3] = {(size_t)wu, (size_t)(wu + 1) / 2 * 2, (size_t)wu};
            const size_t os[3] = {(size_t)W, (size_t)cw * 2, (size_t)cw};
            memset(img, 0, (size_t)wu * wu * 3 * sizeof(float));
            ret = ctsr_process_yuv(ctx, &yuv, ip, is, wu, wu, &yuv, op, os, err, errlen);
        }
        free(img);
        ctx->warming_up = 0;
        if (ret)
            goto fail;
    }
#ifdef CTSR_FAULT_INJECTION
    ctx->frames = 0; /* CTSR_FAULT counts the frames after the warm-up */
#endif
    return 0;
fail:
    ctx->warming_up = 0;
    release_model(ctx);
    return ret;
}

/* Replaces the loaded model by m. If m cannot be set up (device memory, pipelines), the
 * previous model is set up again, so a failed load loses nothing. */
static int finish_load(ctsr_context *ctx, ctsr_model *m, char *err, size_t errlen)
{
    ctsr_model *old = ctx->model;
    ctx->model = NULL; /* release_model keeps it */
    release_model(ctx);
    int ret = setup_model(ctx, m, err, errlen);
    if (!ret) {
        ctsr_model_free(old);
        return 0;
    }
    if (old) {
        char e2[256];
        size_t n = err ? strlen(err) : 0;
        if (setup_model(ctx, old, e2, sizeof e2) && n + 1 < errlen)
            ctsr_seterr(err + n, errlen - n, "; the previous model could not be restored: %s", e2);
    }
    return ret;
}

int ctsr_load_model_file(ctsr_context *ctx, const char *path, char *err, size_t errlen)
{
    ctsr_model *m;
    int ret = ctsr_model_load_file(path, &m, err, errlen);
    return ret ? ret : finish_load(ctx, m, err, errlen);
}

int ctsr_load_model_memory(ctsr_context *ctx, const void *data, size_t size, char *err,
                           size_t errlen)
{
    ctsr_model *m;
    int ret = ctsr_model_load_memory(data, size, &m, err, errlen);
    return ret ? ret : finish_load(ctx, m, err, errlen);
}
