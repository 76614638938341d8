/* libctsr internal: run one shader on host arrays, for the per-shader tests (tests/test_ops.c)
 * that compare each Vulkan operator against its plain C reference (model.h). Arrays are NHWC
 * float with unpadded channels, as in model.h. Activations use the context's precision. */
#ifndef CTSR_OPS_H
#define CTSR_OPS_H

#include "ctsr.h"
#include "model.h"

/* mode 0: out = act(conv(in)); 1: out += FiLM(conv(in)) with film = [gamma(cout) | beta(cout)];
 * 2: out += conv(in). For modes 1 and 2 `out` holds the residual on entry. */
int ctsr_op_conv(ctsr_context *ctx, const float *in, int h, int w, const ctsr_layer *l, int act,
                 int mode, const float *film, float *out, char *err, size_t errlen);
/* mode 4 (CTSR_CONV_LN): out = act(conv(LayerNorm(in))) with LayerNorm's gamma g and beta b
 * (c channels), a 1x1 conv with cin % 4 == 0 */
int ctsr_op_conv_ln(ctsr_context *ctx, const float *in, int h, int w, const ctsr_layer *l,
                    const float *g, const float *b, int act, float *out, char *err,
                    size_t errlen);
/* mode 3 (FiLM per pixel, timestep maps; tmap.h): out += conv(in) * (1 + gamma) + beta with
 * gamma, beta of each pixel looked up in `table` (nlevels levels of [gamma(cout) | beta(cout)])
 * at the level position pos[(ry + y) * frame_w + rx + x] (ctsr_ref_film_lookup): the in/out
 * region is h x w pixels at (rx, ry) of a frame_w x frame_h position map. */
int ctsr_op_conv_film_map(ctsr_context *ctx, const float *in, int h, int w, const ctsr_layer *l,
                          const float *table, int nlevels, const float *pos, int frame_w,
                          int frame_h, int rx, int ry, float *out, char *err, size_t errlen);
int ctsr_op_layernorm(ctsr_context *ctx, const float *in, int h, int w, int c, const float *g,
                      const float *b, float *out, char *err, size_t errlen);
int ctsr_op_wattn(ctsr_context *ctx, const float *qkv, int h, int w, int c, int heads, int win,
                  float *out, char *err, size_t errlen);
/* tail [h][w][3*s*s], img [h][w][3] -> out [s*h][s*w][3] (the float output path) */
int ctsr_op_output(ctsr_context *ctx, const float *tail, const float *img, int h, int w, int s,
                   float *out, char *err, size_t errlen);
/* RGBA8 frame [h][w][4] -> RGBA float [h][w][4] through the unpack shader */
int ctsr_op_unpack_rgba8(ctsr_context *ctx, const uint8_t *in, int h, int w, float *out,
                         char *err, size_t errlen);

/* Benchmark mode (checkasm style): device ms of one conv dispatch on an h x w frame, the mean of
 * `reps` back-to-back dispatches after a warm-up. */
int ctsr_op_conv_bench(ctsr_context *ctx, int h, int w, int cin, int cout, int k, int reps,
                       double *ms, char *err, size_t errlen);

#endif
