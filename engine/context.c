/* libctsr: the context (ctsr.h): creation, getters and setters, and loading a model:
 * building its network (graph.c), the timestep's FiLM vectors and a warm-up frame. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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

/* The warm-up: lavapipe compiles each pipeline at its first dispatch; run every format on
 * a small frame so that the first real frame is not slow. */
static int warm_up(ctsr_context *ctx, char *err, size_t errlen)
{
    const ctsr_config *c = &ctx->model->cfg;
    const int wu = c->window + 3;
    float *img = calloc((size_t)wu * wu * 3 * (1 + c->scale * c->scale), sizeof(float));
    if (!img) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    uint8_t *rgba = (uint8_t *)img;
    int ret = ctsr_process_rgb_f32(ctx, img, wu, wu, img + (size_t)wu * wu * 3, err, errlen);
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
    return ret;
}

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
    ctx->overlap = ctsr_network_overlap(c);
    ctx->film_host = calloc((size_t)2 * c->channels * c->blocks, sizeof(float));
    if (!ctx->film_host) {
        ctsr_seterr(err, errlen, "out of memory");
        ret = CTSR_E_NOMEM;
        goto fail;
    }
    if ((ret = ctsr_build_network(ctx, err, errlen)) || (ret = ctsr_alloc_descriptors(ctx, err, errlen)))
        goto fail;
    ctsr_set_timestep(ctx, ctx->t);

#ifdef CTSR_FAULT_INJECTION
    ctx->frames = INT_MIN / 2; /* no injected fault in the warm-up */
#endif
    ctx->warming_up = 1;
    ret = warm_up(ctx, err, errlen);
    ctx->warming_up = 0;
    if (ret)
        goto fail;
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
