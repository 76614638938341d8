/* libctsr: running the network over a frame, tile by tile.
 *
 * Device tensors are NHWC with channels padded to a multiple of 4 (vec4 access). Per tile the
 * engine holds four of them, sized for the largest tile region:
 *   IMG  the input tile as RGBA floats (alpha rides along for the output's bilinear alpha)
 *   X    the residual stream (C channels)
 *   T1   scratch: conv1 output, QKV (3C), MLP hidden (hC), tail output (3*s*s)
 *   T2   scratch: attention output (C)
 * A frame is cut into tiles of T x T input pixels; each tile is computed on a region that adds
 * `overlap` pixels of context on every side (clipped to the frame) and only the tile's own
 * output pixels are written. The overlap is a multiple of the attention window and covers the
 * receptive field, and tiles start at multiples of the window, so attention windows in a region
 * are the frame's windows and tiled output equals untiled output up to float rounding. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tmap.h"

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
        ctsr_op op = d->op;
        op.mode = CTSR_CONV_FILM_MAP;
        int pi = ctsr_get_op_pipe(ctx, &op, err, errlen);
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
        /* the table as vec4 texels (binding CTSR_BINDING_FILM_TEXELS) */
        if ((ret = ctsr_vk_buffer_view_part(&ctx->vk, &nb, tmap_table_floats(c) * sizeof(float),
                                            err, errlen))) {
            ctsr_vk_buffer_destroy(&ctx->vk, &nb);
            return ret;
        }
        memcpy(nb.map, ctx->film_host, F * sizeof(float));
        ctsr_vk_buffer_destroy(&ctx->vk, &ctx->buf[B_FILM]);
        ctx->buf[B_FILM] = nb;
        ctsr_write_descriptors(ctx);
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
    ctsr_write_descriptors(ctx);
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

/* Tile `index` of a w x h frame cut into T x T tiles (row by row); 0 past the last. */
static int tile_iter(const ctsr_context *ctx, int w, int h, int T, int index, ctsr_tile *t)
{
    const int nx = cdiv(w, T), ny = cdiv(h, T), P = ctx->overlap;
    if (index >= nx * ny)
        return 0;
    t->fw = w;
    t->fh = h;
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

/* Records the network on tile t of a frame in format fmt. */
static void record_tile(ctsr_context *ctx, const ctsr_tile *t, int fmt)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT};
    for (int i = 0; i < ctx->nd; i++) {
        const dispatch *d = &ctx->d[i];
        ctsr_op op = d->op;
        int pipe = d->pipe[0];
        if (op.kind == K_UNPACK || op.kind == K_OUTPUT) {
            pipe = d->pipe[fmt];
            op.fmt = fmt;
            op.yuv = op.kind == K_UNPACK ? &ctx->yuv_in : &ctx->yuv_out;
        } else if (op.kind == K_CONV) {
            if (d->film && ctx->tmap_frame) { /* FiLM per pixel from the map's positions */
                const ctsr_config *c = &ctx->model->cfg;
                const int F = 2 * c->channels * c->blocks;
                pipe = d->pipe_tmap;
                op.mode = CTSR_CONV_FILM_MAP;
                op.foff = F + d->op.foff;
                op.lstride = F;
                op.moff = (int32_t)tmap_table_floats(c);
            }
            ctx->frame_conv_macs += (double)t->rw * t->rh * d->macs_per_px;
        }
        ctsr_op_record(ctx, ctx->pipes[pipe].pipe, d->set, &op, t);
        ctsr_profile_mark(ctx, op.kind);
        vkCmdPipelineBarrier(ctx->vk.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                             VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    }
}

int ctsr_run_frame(ctsr_context *ctx, int w, int h, int fmt, char *err, size_t errlen)
{
    int ret = 0;
    const int T = ctsr_effective_tile_size(ctx, w, h);
    ctsr_tile t;
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
    if (ctx->profiling && (ret = ctsr_profile_reserve(ctx, (uint32_t)(ntiles * ctx->nd + 1), err, errlen)))
        return ret;
    VK_CHECK(vkBeginCommandBuffer(ctx->vk.cmd, &bi));
    ctx->frame_conv_macs = 0;
    ctx->query_count = 0;
    if (ctx->profiling) {
        vkCmdResetQueryPool(ctx->vk.cmd, ctx->queries, 0, ctx->query_cap);
        ctsr_profile_mark(ctx, K_COUNT);
    }
    for (int i = 0; tile_iter(ctx, w, h, T, i, &t); i++)
        record_tile(ctx, &t, fmt);
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
        ret = ctsr_profile_read(ctx, ntiles, err, errlen);
fail:
    return ret;
}
