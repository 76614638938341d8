/* libctsr internal: the context, and what its units share. Along the data path:
 *   optable.c  the operator table (optable.h): per operator its shader, specialization and
 *              push constants, group counts; what graph.c, run.c and ops.c dispatch through
 *   graph.c    the network as a list of dispatches: shaders, pipelines, weight packing,
 *              descriptor sets
 *   run.c      one frame through the network: tile buffers, tiles, recording, submission
 *   profile.c  timestamps per dispatch (ctsr_set_profiling)
 *   frame.c    frame I/O: RGBA8, float RGB, YUV 4:2:0 (checks, frame buffers, copies)
 *   context.c  the context and its getters and setters; model loading and warm-up
 * (ops.c, test support, runs one shader on host arrays.) */
#ifndef CTSR_INTERNAL_H
#define CTSR_INTERNAL_H

#include "ctsr.h"
#include "model.h"
#include "optable.h"
#include "vk.h"

/* the context's buffers (run.c describes the tile tensors IMG, X, T1, T2) */
enum { B_FRAME_IN, B_FRAME_OUT, B_IMG, B_X, B_T1, B_T2, B_WEIGHTS, B_FILM, B_COUNT };

#define MAX_PIPES 48
#define MAX_DISPATCH (8 + CTSR_MAX_BLOCKS * 12)
#define DEFAULT_BUDGET ((size_t)256 << 20)
#define MAX_FRAME_EDGE 16384 /* frames and timestep maps: pixels a side at most */

typedef struct pipe_entry {
    int kind; /* shader variant (index in ctsr_shaders) */
    int32_t spec[CTSR_MAX_SPEC];
    VkPipeline pipe;
} pipe_entry;

/* One dispatch of the network: its operator (optable.h), pipelines and buffers. */
typedef struct dispatch {
    ctsr_op op; /* K_UNPACK / K_OUTPUT: op.fmt and op.yuv are the frame's, set per frame */
    int pipe[CTSR_FMT_COUNT]; /* [format] for K_UNPACK / K_OUTPUT; pipe[0] otherwise */
    int bind[CTSR_BINDINGS];
    double macs_per_px; /* K_CONV */
    int film;           /* K_CONV: applies FiLM (CTSR_CONV_FILM), op.foff its block's offset */
    int pipe_tmap;      /* film: the CTSR_CONV_FILM_MAP variant; -1 until first needed */
    VkDescriptorSet set;
} dispatch;

struct ctsr_context {
    ctsr_options opts;
    ctsr_vk vk;
    char device_name[VK_MAX_PHYSICAL_DEVICE_NAME_SIZE];
    ctsr_model *model;
    float t;
    float *film_host;
    int fp16;
    int act_bytes;
    int wg_conv, wg;
    ctsr_buffer buf[B_COUNT];
    size_t region_px; /* pixels the tile buffers hold */
    int t1_c4;        /* channels/4 of T1 */
    pipe_entry pipes[MAX_PIPES];
    int npipes;
    dispatch d[MAX_DISPATCH];
    int nd;
    VkDescriptorPool dpool;
    int overlap;
    /* profiling (ctsr_set_profiling): a timestamp after every dispatch of a frame */
    int profiling;
    VkQueryPool queries;
    uint32_t query_cap, query_count;
    uint8_t *query_kind; /* kind of the dispatch each timestamp closes */
    double frame_conv_macs;
    ctsr_profile profile;
    ctsr_yuv yuv_in, yuv_out; /* colorimetry of the frame being processed (YUV formats) */
    /* timestep map (ctsr_set_timestep_map; tmap.h): the clamped copy, its size; B_FILM then
     * holds [uniform FiLM (F floats) | table of CTSR_TMAP_LEVELS levels | level positions] */
    float *tmap;
    int tmap_w, tmap_h;
    int tmap_dirty;        /* level positions (and exact levels) to compute and upload */
    int tmap_nexact;       /* levels in the table now; -1: none uploaded */
    float tmap_exact[64];  /* their t (CTSR_TMAP_LEVELS) */
    int tmap_frame;        /* the frame being recorded uses the map */
    int warming_up;        /* the load's warm-up frames ignore the map */
#ifdef CTSR_FAULT_INJECTION
    /* test builds only (meson: libctsr-faults): CTSR_FAULT="device-lost:N" or "alloc:N" makes
     * the N-th frame after the model load fail as if the queue submission returned
     * VK_ERROR_DEVICE_LOST (and every later one: a lost device stays lost) or as if its frame
     * buffer had to be reallocated and the allocation failed (later frames allocate again) */
    int fault_lost_at, fault_alloc_at, frames, lost;
#endif
};


static inline int c4(int c) { return (c + 3) / 4; }
/* ceil(a / b) for a >= 0, b > 0, computed in 64 bits (a may be INT_MAX) */
static inline int cdiv(int a, int b) { return (int)(((int64_t)a + b - 1) / b); }

/* Window attention may share keys across a subgroup when 8 lanes are 8 pixels of one window
 * row (workgroup and subgroup of 8, window a multiple of 8) and k and v of one head fit in 8
 * texels (d4: head channels / 4). */
static inline int wattn_shared_keys(const struct ctsr_context *ctx, int d4, int win)
{
    return ctx->wg_conv == 8 && ctx->vk.subgroup_size == 8 && ctx->vk.subgroup_shuffle &&
           win % 8 == 0 && 2 * d4 <= 8;
}

/* Growing float array of packed weights; blocks are 16-byte aligned. */
typedef struct wpack {
    float *w;
    size_t n, cap;
} wpack;
/* conv weights [Cout][Cin][k][k] -> [ocg][ky][kx][ic / 4][oc % 8][ic % 4]; bias padded to 8 */
/* Output channels per convolution invocation (CTSR_SPEC_CONV_OCW; the weights are packed
 * per group of this width): of 16, 12 and 8, the widest that pads cout least. Wider groups
 * reuse each input load for more channels and pay a group's fixed cost (loads, loop, stores)
 * fewer times: measured on lavapipe (ctsr-opbench, 640x360) 16 against 8 takes 0.66-0.85 of
 * the time for 32 and 64 channels, 12 against 8 0.72-0.89 for 12, 24 and 36. */
static inline int ctsr_conv_ocw(int cout)
{
    int best = 16;
    for (int w = 12; w >= 8; w -= 4)
        if ((cout + w - 1) / w * w < (cout + best - 1) / best * best)
            best = w;
    return best;
}
int ctsr_pack_conv(wpack *p, const ctsr_layer *l, int *woff, int *boff);
/* A 1x1 conv after a LayerNorm (gamma g, beta b) for CTSR_CONV_LN: packs the weights
 * w[o][i] * g[i] as ctsr_pack_conv does, the bias b[o] + sum_i w[o][i] * beta[i], and right
 * after the bias (at boff + 8 * ceil(cout / 8)) the folded weights' sums over i per output
 * channel. Then conv(LN(x)) = rstd * (conv'(x) - mean * sum) + bias' for each pixel's mean and
 * rstd = 1 / sqrt(var + eps). */
int ctsr_pack_conv_ln(wpack *p, const ctsr_layer *l, const float *g, const float *b, int *woff,
                      int *boff);

/* ---- graph.c ---- */
/* Index in ctx->pipes of the pipeline of shader `kind` (K_*) with specialization constants
 * spec[0..nspec-1] (created at the first request), or a negative CTSR_E_* code. */
int ctsr_get_pipe(ctsr_context *ctx, int kind, const int32_t *spec, int nspec, char *err,
                  size_t errlen);
/* ctsr_get_pipe for an operator (its shader and specialization constants) */
int ctsr_get_op_pipe(ctsr_context *ctx, const ctsr_op *op, char *err, size_t errlen);
/* The dispatch list, pipelines, weights buffer and FiLM buffer of ctx->model. */
int ctsr_build_network(ctsr_context *ctx, char *err, size_t errlen);
/* Receptive radius of the network in input pixels, rounded up to the window. */
int ctsr_network_overlap(const ctsr_config *c);
/* One descriptor set per dispatch (written by ctsr_write_descriptors). */
int ctsr_alloc_descriptors(ctsr_context *ctx, char *err, size_t errlen);
/* Points every descriptor set at the current buffers (after any buffer reallocation). */
void ctsr_write_descriptors(ctsr_context *ctx);

/* ---- run.c ---- */
/* Runs the network over a w x h frame of format fmt (CTSR_FMT_*) already in B_FRAME_IN; the
 * result in B_FRAME_OUT. */
int ctsr_run_frame(ctsr_context *ctx, int w, int h, int fmt, char *err, size_t errlen);

/* ---- profile.c ---- */
/* Query pool and kinds for n timestamps. */
int ctsr_profile_reserve(ctsr_context *ctx, uint32_t n, char *err, size_t errlen);
/* Records a timestamp closing a dispatch of `kind` (K_*; K_COUNT: the frame's start). */
void ctsr_profile_mark(ctsr_context *ctx, int kind);
/* Reads the frame's timestamps into ctx->profile. */
int ctsr_profile_read(ctsr_context *ctx, int ntiles, char *err, size_t errlen);

#endif
