/* libctsr internal: timestep maps (a t per input pixel; ctsr.h, "Per-pixel timestep").
 *
 * t conditions the network only through the per-block FiLM vectors (gamma, beta per channel),
 * which the convolution that closes each residual block applies per pixel, so a map costs no
 * more than a per-pixel choice of FiLM vectors. The engine uploads a table of FiLM vectors
 * at up to CTSR_TMAP_LEVELS t levels (ascending; level k at k * F floats, F = 2 * C * blocks,
 * the layout of ctsr_model_film) and, per pixel, a level position u = k + f: FiLM of level k,
 * moved linearly towards level k + 1 by f in [0, 1). A pixel whose t is a level has f = 0
 * and gets exactly FiLM(t); a pixel between two levels gets the linear blend of their FiLM
 * vectors, weighted by where its t lies between them.
 *
 * Blending FiLM vectors, not evaluating FiLM(t) between the levels, is deliberate: the
 * timestep MLP's sinusoidal embedding (temb_scale 100) makes FiLM(t) oscillate: on the
 * shipped models its total variation over [0, 1] is about 40 times |FiLM(1) - FiLM(0)|, so
 * a ramp of t across a few pixels would sweep through unrelated FiLM vectors and draw a
 * seam of noise (docs/roi.md measures it), while the blend moves straight from one side's
 * conditioning to the other's. */
#ifndef CTSR_TMAP_H
#define CTSR_TMAP_H

#include <stddef.h>

#include "model.h"

#define CTSR_TMAP_LEVELS 64 /* levels at most */

/* The levels of a w x h map (values in [0, 1], no NaN), ascending, into levels[]; returns
 * their number (>= 1), or CTSR_E_NOMEM. The levels are the map's smallest and largest value
 * and its flat values, those that fill a 2 x 2 block of pixels (2 x 1 in a map one pixel
 * high or wide), the ones filling the most blocks first (ties: the smaller value), up to
 * CTSR_TMAP_LEVELS. A region map's base t and region t are flat; the values of its ramps
 * (and of any gradient) are not: they blend the FiLM vectors of the levels around them. */
int ctsr_tmap_levels(const float *map, int w, int h, float *levels);

/* Level positions u of n map values (see above) given the levels (ascending, covering the
 * values' range): k where the value is level k, else k + (t - level k) / (level k+1 - level
 * k) for the bracketing levels. */
void ctsr_tmap_positions(const float *map, size_t n, const float *levels, int nlevels,
                         float *u);

/* FiLM value of one channel at position u in a table (reference of the shader's lookup):
 * level floor(u), linearly towards the next level by u - floor(u) when that is > 0. `off` is
 * the value's offset inside a level, `stride` the floats per level. */
float ctsr_ref_film_lookup(const float *table, int stride, float u, int off);

/* The whole network with a t per pixel (tmap [H][W]), the reference of the engine's map path
 * (ref.c): each pixel's FiLM vectors are ctsr_model_film at its t when that is one of the
 * levels (ascending), else the linear blend of the FiLM vectors of the two levels around it
 * (found by a linear scan, computed in double). Same returns as ctsr_ref_forward. */
int ctsr_ref_forward_tmap(const ctsr_model *m, const float *tmap, const float *levels,
                          int nlevels, const float *img, int h, int w, float *out);

#endif
