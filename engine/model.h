/* libctsr internal: the student model on the host (weights, loading, timestep MLP) and the
 * plain C reference of every operator (ref.c). Not installed; the public API is ctsr.h.
 * The config is config.h, the error formatter error.h (both included here).
 *
 * Layouts: images and activations are NHWC float (one image: [H][W][C], C unpadded).
 * Weights keep PyTorch's layouts: conv [Cout][Cin][kh][kw], linear [Cout][Cin].
 * The definition of the network is training/ctsr/student.py. */
#ifndef CTSR_MODEL_H
#define CTSR_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"

#define CTSR_FORMAT_NAME "ctsr-student"
#define CTSR_FORMAT_VERSION 1
/* CTSR_LRELU_SLOPE, CTSR_LN_EPS: ctsr-abi.h (through config.h), shared with the shaders */

typedef struct ctsr_layer {
    float *w; /* PyTorch layout */
    float *b;
    int cout, cin, k; /* k = 3 (conv3x3) or 1 (1x1 conv / linear) */
} ctsr_layer;

typedef struct ctsr_block {
    ctsr_layer conv1, conv2, film; /* film: [2C][M], output = [gamma(C) | beta(C)] */
    int has_attn;
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b; /* [C] each */
    ctsr_layer qkv, proj, mlp1, mlp2;     /* 1x1: [3C][C], [C][C], [hC][C], [C][hC] */
} ctsr_block;

typedef struct ctsr_model {
    ctsr_config cfg;
    ctsr_layer fc1, fc2; /* timestep MLP: [M][E], [M][M] */
    ctsr_layer head;     /* [C][3][3][3] */
    ctsr_layer tail;     /* [3*s*s][C][3][3] */
    ctsr_block blocks[CTSR_MAX_BLOCKS];
    int format_version;
    char *config_json; /* as stored */
    char *provenance;  /* as stored, may be "" */
    size_t n_params;
    float *storage; /* one allocation holding every weight above */
} ctsr_model;

/* Loading (model.c: the safetensors container, safetensors.c; the config; the tensors the
 * config needs, tensors.c; then ctsr_model_probe). Return 0 on success; on failure a
 * negative CTSR_E* code (ctsr.h) and a human-readable message in err (always NUL-terminated when errlen > 0). Every read is
 * bounds-checked: truncated file, oversized / malformed header, wrong dtype or shape,
 * missing or extra tensor, unknown format version all fail cleanly. */
int ctsr_model_load_file(const char *path, ctsr_model **out, char *err, size_t errlen);
int ctsr_model_load_memory(const void *data, size_t size, ctsr_model **out, char *err,
                           size_t errlen);
void ctsr_model_free(ctsr_model *m);

/* Runs the reference network on a small test image at t = 0, 0.5 and 1 and fails with
 * CTSR_E_FORMAT when it computes a non-finite value: finite but huge weights that make the
 * activations overflow (which would give black frames). ctsr_model_load_* call it. A check
 * on one image, not a proof for every input. */
int ctsr_model_probe(const ctsr_model *m, char *err, size_t errlen);

/* Timestep MLP on the host (film.c): writes B*2*C floats, for block b: gamma at [b*2C], beta at
 * [b*2C + C]. t is clamped to [0, 1]. */
void ctsr_model_film(const ctsr_model *m, float t, float *film);

/* ---- plain C reference operators (NHWC float) ---- */
/* 3x3 conv, zero padding, stride 1: in [H][W][cin] -> out [H][W][cout] */
void ctsr_ref_conv3x3(const float *in, int h, int w, const ctsr_layer *l, float *out);
/* 1x1 conv: in [H][W][cin] -> out [H][W][cout]; also used for linear layers with h=w=1 */
void ctsr_ref_conv1x1(const float *in, int h, int w, const ctsr_layer *l, float *out);
void ctsr_ref_act(float *x, size_t n, int act);
void ctsr_ref_layernorm(const float *in, int h, int w, int c, const float *g, const float *b,
                        float *out);
/* qkv [H][W][3C] ([q|k|v] channel order) -> out [H][W][C], window edge rule of student.py */
void ctsr_ref_window_attn(const float *qkv, int h, int w, int c, int heads, int win,
                          float *out);
/* tail [H][W][3*s*s] pixel-shuffled + bilinear (align_corners=False) upsample of img
 * [H][W][3], clamped to [0,1] -> out [sH][sW][3] */
void ctsr_ref_shuffle_residual(const float *tail, const float *img, int h, int w, int s,
                               float *out);
/* Whole network on the CPU: img [H][W][3] in [0,1] -> out [sH][sW][3]. Returns 0,
 * CTSR_E_NOMEM, or CTSR_E_FORMAT when the FiLM vectors or the network's output before the
 * residual and the clamp are not finite (weights so large that the activations overflow). */
int ctsr_ref_forward(const ctsr_model *m, float t, const float *img, int h, int w, float *out);

#endif
