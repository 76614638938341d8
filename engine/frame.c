/* libctsr: frame I/O. RGBA8, float RGB and YUV 4:2:0 (I420, NV12) frames: their checks,
 * the host-visible frame buffers and the copies between the caller's strided memory and the
 * device layout, around run_frame (run.c). */
#include <stdint.h>
#include <string.h>

#include "internal.h"

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
            ctsr_write_descriptors(ctx);
    }
    return 0;
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
    if ((ret = ctsr_run_frame(ctx, w, h, CTSR_FMT_RGBA8, err, errlen)))
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
    if ((ret = ctsr_run_frame(ctx, w, h, CTSR_FMT_RGB_F32, err, errlen)))
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
    if ((ret = ctsr_run_frame(ctx, w, h, in_fmt->format == CTSR_YUV_I420 ? CTSR_FMT_I420 : CTSR_FMT_NV12, err,
                         errlen)))
        return ret;
    yuv_planes(out_fmt, ctx->buf[B_FRAME_OUT].map, out_planes, out_strides, W, H, 0, "output",
               err, errlen);
    return 0;
}

