/* libctsr: controllable super-resolution on Vulkan compute.
 *
 * One context owns a Vulkan device, one loaded model and the buffers for one tile. Typical use:
 *
 *     char err[512];
 *     ctsr_context *ctx;
 *     if (ctsr_context_create(&(ctsr_options){ .device_index = -1 }, &ctx, err, sizeof err))
 *         fail(err);
 *     if (ctsr_load_model_file(ctx, "model.safetensors", err, sizeof err)) fail(err);
 *     ctsr_set_timestep(ctx, 0.3f);
 *     ctsr_process_rgba8(ctx, in, w, h, in_stride, out, out_stride, err, sizeof err);
 *     ctsr_context_destroy(ctx);
 *
 * Every function that can fail returns 0 or a negative CTSR_E_* code and writes a message
 * into err (NUL-terminated whenever errlen > 0). A context is not thread-safe: use it from
 * one thread at a time; ctsr_set_timestep only touches host memory and may be called
 * between frames at no cost.
 *
 * Environment: CTSR_NO_SUBGROUP_SHUFFLE=1 makes the convolutions use the variant without
 * subgroup shuffles (what devices with subgroups narrower than 8 get); for testing.
 * CTSR_NO_SHADER_YUV=1 makes ctsr_supports_yuv() answer 0 (what devices without 8-bit
 * storage buffers get), so callers take their host conversion path; for testing.
 *
 * Strings returned by the library: ctsr_strerror's are static; the others belong to the
 * context (see each function) and are never freed by the caller.
 *
 * Linking: pkg-config --cflags --libs ctsr (the shared library libctsr.so, this header
 * installed as <ctsr.h> under include/ctsr/). The library exports exactly the functions
 * declared here.
 */
#ifndef CTSR_H
#define CTSR_H

#include <stddef.h>
#include <stdint.h>

/* libctsr is compiled with hidden symbol visibility (CTSR_BUILD); every declaration between
 * this push and the pop at the end of the header is exported from the shared library. */
#if defined(CTSR_BUILD) && defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CTSR_OK = 0,
    CTSR_E_INVALID = -1,   /* bad argument (size, NULL, out of range) */
    CTSR_E_NOMEM = -2,     /* host or device allocation failed */
    CTSR_E_IO = -3,        /* file missing or unreadable */
    CTSR_E_FORMAT = -4,    /* model file malformed or of an unknown version */
    CTSR_E_NO_DEVICE = -5, /* no Vulkan instance or no usable device */
    CTSR_E_VULKAN = -6,    /* a Vulkan call failed */
    CTSR_E_NO_MODEL = -7,  /* processing before a model was loaded */
};

typedef struct ctsr_context ctsr_context;

typedef enum ctsr_precision {
    CTSR_PRECISION_AUTO = 0, /* fp16 storage where the device supports it and it pays */
    CTSR_PRECISION_FP32 = 1,
    CTSR_PRECISION_FP16 = 2, /* fp16 activations and weights in memory, fp32 arithmetic */
} ctsr_precision;

typedef struct ctsr_options {
    int device_index;          /* -1: automatic (discrete GPU, integrated GPU, then CPU) */
    int tile_size;             /* input tile edge in pixels; 0: automatic from memory_budget */
    size_t memory_budget;      /* device bytes for activations; 0: 256 MiB */
    ctsr_precision precision;  /* AUTO uses FP32 on CPU devices (fp16 does not pay there) */
    int validation;            /* enable VK_LAYER_KHRONOS_validation when present */
} ctsr_options;

/* Name of a CTSR_E_* code: a static string (never freed, valid for the program's life). */
const char *ctsr_strerror(int code);

/* The Vulkan devices, for listing: copies the names of the first min(count, max) devices
 * into the caller's names[] (NUL-terminated) and returns their count, which may exceed max;
 * a negative CTSR_E_* code with a message on error. The index of a name is the device_index
 * of ctsr_options. */
int ctsr_list_devices(char names[][256], int max, char *err, size_t errlen);

/* Opens the Vulkan device of opts (NULL: every option at its default, device -1) into a new
 * context (*out; NULL on failure). No model is loaded yet. */
int ctsr_context_create(const ctsr_options *opts, ctsr_context **out, char *err, size_t errlen);
/* Frees the context, its model, buffers and device; NULL is ignored. */
void ctsr_context_destroy(ctsr_context *ctx);
/* The Vulkan device's name: owned by the context, valid until ctsr_context_destroy. */
const char *ctsr_device_name(const ctsr_context *ctx);
/* 1 when the device is a CPU implementation (lavapipe). */
int ctsr_device_is_cpu(const ctsr_context *ctx);

/* Load a model (replaces any loaded one). Builds the pipelines and runs a warm-up
 * dispatch so the first frame is not slow. The file is read, or the data (size bytes of a
 * .safetensors file) copied, during the call: nothing of it is kept. On failure the
 * previously loaded model, if any, stays loaded (when it cannot be set up again, the message
 * says so and no model is loaded). The timestep, timestep map, tile size and profiling
 * settings carry over to the new model. */
int ctsr_load_model_file(ctsr_context *ctx, const char *path, char *err, size_t errlen);
int ctsr_load_model_memory(ctsr_context *ctx, const void *data, size_t size, char *err,
                           size_t errlen);
/* Upscaling factor of the loaded model; 0 when none is loaded. */
int ctsr_scale(const ctsr_context *ctx);
/* Model description: config JSON and provenance as stored (NULL when no model). Owned by the
 * context: valid until the next ctsr_load_model_* call or ctsr_context_destroy (copy them to
 * keep them longer). */
const char *ctsr_model_config(const ctsr_context *ctx);
const char *ctsr_model_provenance(const ctsr_context *ctx);
/* Multiply-accumulates per input pixel of the loaded model; 0 when none is loaded. */
double ctsr_model_macs_per_pixel(const ctsr_context *ctx);

/* Timestep in [0, 1] (clamped; NaN -> 0): 0 = fidelity, 1 = realness. Default 0.5. Applies
 * from the next frame; with or without a model loaded. ctsr_get_timestep: the value in use
 * (after clamping). */
void ctsr_set_timestep(ctsr_context *ctx, float t);
float ctsr_get_timestep(const ctsr_context *ctx);

/* ---- Per-pixel timestep (timestep maps) ----
 * t may vary inside a frame, e.g. fidelity (t = 0) on faces and text, realness (t = 1) on
 * texture. t conditions the network only through per-block FiLM vectors (a scale and a
 * shift per channel, applied per pixel), so a per-pixel t costs little.
 *
 * How FiLM is applied where t varies: the engine keeps a table of FiLM vectors at up to 64
 * t levels: the map's smallest and largest value and its flat values (those that fill a
 * 2 x 2 block of pixels; the most frequent first). A pixel whose t is a level gets the FiLM
 * vectors of exactly its t, so a map with t = a in a rectangle and b elsewhere computes, away
 * from the rectangle's border by the receptive field, exactly what uniform t = a and t = b
 * compute. A pixel between two levels (a ramp, a gradient) gets the linear blend of the two
 * levels' FiLM vectors, weighted by where its t lies between them: the FiLM vectors of the
 * shipped models oscillate in t (sinusoidal embedding), so evaluating them at every
 * intermediate t would sweep a ramp through unrelated conditionings and draw a seam, while
 * the blend moves straight from one side's conditioning to the other's (docs/roi.md has the
 * measurements). A map costs a host pass over its pixels when it changes and a per-pixel
 * table lookup in the FiLM convolutions; the uniform path (no map) is unchanged.
 *
 * ctsr_set_timestep_map: map[y][x] (rows `stride` bytes apart; a multiple of 4, >= 4 * w) for
 * the next frames, which must be exactly w x h input pixels (any other size fails with
 * CTSR_E_INVALID until the map is replaced or cleared). The map is copied; values are clamped
 * to [0, 1] like ctsr_set_timestep's, and a NaN anywhere is an error (CTSR_E_INVALID naming
 * the pixel; the previous map stays). NULL clears the map: the uniform t (ctsr_set_timestep,
 * which a map leaves untouched) applies again. No model needs to be loaded; a map survives
 * model loads. The first frame with a map after a model load compiles one shader variant. */
int ctsr_set_timestep_map(ctsr_context *ctx, const float *map, int w, int h, size_t stride,
                          char *err, size_t errlen);

/* A rectangle of input pixels [x, x + w) x [y, y + h) with its t (clamped to [0, 1]; NaN is an
 * error). It may extend past the map; w <= 0 or h <= 0: ignored. */
typedef struct ctsr_timestep_region {
    int x, y, w, h;
    float t;
} ctsr_timestep_region;

/* Rasterises regions into a map for ctsr_set_timestep_map: base_t (clamped) everywhere, each
 * region's t inside its rectangle, and around it a smooth ramp (smoothstep of the distance
 * from the rectangle, measured from pixel centres) over `transition` input pixels outside
 * the rectangle, from the region's t to what lies below it; transition 0 gives hard edges.
 * Overlaps: regions are painted in order of decreasing t, each blended over what is below,
 * so the lowest t wins where regions overlap, whatever their order, and the map stays
 * continuous. Pixels beyond every ramp hold exactly base_t, pixels inside a region (and no
 * lower-t region's ramp) exactly its t. 0, or CTSR_E_INVALID (NULL map, bad size or stride,
 * n < 0, NaN t, negative or non-finite transition) with a message. */
int ctsr_timestep_map_fill(float *map, int w, int h, size_t stride, float base_t,
                           const ctsr_timestep_region *regions, int n, float transition,
                           char *err, size_t errlen);

/* The transition width (input pixels) this library suggests for the loaded model: its
 * receptive field rounded up to the attention window, ctsr_tile_overlap (32 for ctsr-x2, 16
 * for ctsr-x2-tiny); 0 without a model. docs/roi.md gives the measurement behind it. */
int ctsr_default_transition(const ctsr_context *ctx);
/* ---- end of per-pixel timestep ---- */

/* Tile edge in input pixels (0 = automatic). Takes effect at the next frame. 0, or
 * CTSR_E_INVALID for a negative size. */
int ctsr_set_tile_size(ctsr_context *ctx, int tile_size, char *err, size_t errlen);
/* The tile edge the next frame of w x h would use (0 without a model), and the overlap
 * (context added around each tile) in pixels of the loaded model. */
int ctsr_effective_tile_size(const ctsr_context *ctx, int w, int h);
int ctsr_tile_overlap(const ctsr_context *ctx);

/* Frame layouts for ctsr_check_frame_size. */
enum { CTSR_FRAME_RGBA8 = 0, CTSR_FRAME_RGB_F32 = 1, CTSR_FRAME_YUV420 = 2 };
/* Whether frames of w x h input pixels in that layout can ever be processed by the loaded
 * model on this device: 1..16384 pixels a side, input and output frame buffers within the
 * device's maxStorageBufferRange, output rows within its dispatch limit. 0, or
 * CTSR_E_INVALID (CTSR_E_NO_MODEL) with a message that names the limit. The process
 * functions check the same. */
int ctsr_check_frame_size(const ctsr_context *ctx, int layout, int w, int h, char *err,
                          size_t errlen);

/* Upscale one frame. Input w x h, output (scale*w) x (scale*h). Strides in bytes.
 * RGBA8: 4 bytes per pixel, alpha is upscaled bilinearly (not by the network).
 * 0, or CTSR_E_NO_MODEL, CTSR_E_INVALID (NULL frame, size or stride: ctsr_check_frame_size),
 * CTSR_E_NOMEM or CTSR_E_VULKAN with a message; the output is undefined on failure. The same
 * holds for ctsr_process_rgb_f32 and ctsr_process_yuv. */
int ctsr_process_rgba8(ctsr_context *ctx, const uint8_t *in, int w, int h, size_t in_stride,
                       uint8_t *out, size_t out_stride, char *err, size_t errlen);
/* Float RGB, interleaved [h][w][3] in [0, 1], tightly packed (the layout the tests use). */
int ctsr_process_rgb_f32(ctsr_context *ctx, const float *in, int w, int h, float *out,
                         char *err, size_t errlen);

/* YUV 4:2:0 frames, converted to and from RGB in the shaders. Planes are 8-bit; chroma is
 * ((w + 1) / 2) x ((h + 1) / 2). I420: planes 0 (Y), 1 (U = Cb), 2 (V = Cr); NV12: planes 0
 * (Y) and 1 (interleaved Cb Cr), plane 2 unused (may be NULL).
 * kr, kb: luma coefficients of the colour matrix (BT.601: 0.299, 0.114; BT.709: 0.2126,
 * 0.0722); full_range: codes 0..255, else limited (Y' 16..235, Cb Cr 16..240). Chroma
 * siting along each axis: cosited (chroma sample i at luma position 2i) or centred (at
 * 2i + 1/2). Input: chroma is upsampled bilinearly at its siting. Output: each chroma sample
 * is computed from the upscaled RGB: the 2x2 average (centred), with 1-2-1 weights over the
 * neighbouring pixels along a cosited axis (pixels outside the frame clamp); codes are
 * rounded to nearest. Input and output may have different colorimetry. */
enum { CTSR_YUV_I420 = 1, CTSR_YUV_NV12 = 2 };
typedef struct ctsr_yuv {
    int format;       /* CTSR_YUV_I420 or CTSR_YUV_NV12 */
    double kr, kb;    /* luma coefficients of the matrix */
    int full_range;   /* 1: 0..255, 0: limited */
    int chroma_cosited_h, chroma_cosited_v;
} ctsr_yuv;

/* 1 when the device can convert YUV in shaders (storageBuffer8BitAccess), else 0:
 * ctsr_process_yuv then fails with CTSR_E_INVALID and the caller converts on the host. */
int ctsr_supports_yuv(const ctsr_context *ctx);
/* Upscale one YUV frame: input w x h, output (scale*w) x (scale*h), both of the same
 * format. Strides in bytes, per plane (an NV12 chroma row of c samples has 2c bytes). */
int ctsr_process_yuv(ctsr_context *ctx, const ctsr_yuv *in_fmt, const uint8_t *const in_planes[3],
                     const size_t in_strides[3], int w, int h, const ctsr_yuv *out_fmt,
                     uint8_t *const out_planes[3], const size_t out_strides[3], char *err,
                     size_t errlen);

/* Per-operator device time of the last frame, from Vulkan timestamps (profiling on). */
typedef struct ctsr_profile {
    double total_ms;     /* first to last dispatch */
    double conv_ms;      /* 3x3 and 1x1 convolutions */
    double attn_ms;      /* window attention */
    double norm_ms;      /* LayerNorm */
    double io_ms;        /* unpack and shuffle + residual + pack */
    double conv_macs;    /* multiply-accumulates the convolutions did (tile overlap included) */
    int tiles;
} ctsr_profile;
/* Profiling adds a timestamp per dispatch; off by default. Returns CTSR_E_INVALID when the
 * device has no compute timestamps. */
int ctsr_set_profiling(ctsr_context *ctx, int on, char *err, size_t errlen);
/* Copies the last profiled frame's times into *p (zeros before the first); 0, or
 * CTSR_E_INVALID when profiling is off (*p still written). */
int ctsr_get_profile(const ctsr_context *ctx, ctsr_profile *p);

/* Device memory in bytes the context holds now (weights + tile buffers). */
size_t ctsr_device_memory(const ctsr_context *ctx);

#if defined(CTSR_BUILD) && defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif
#endif
