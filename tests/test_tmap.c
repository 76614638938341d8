/* engine-tmap: timestep maps (a t per input pixel; ctsr.h "Per-pixel timestep").
 *   - the rasteriser ctsr_timestep_map_fill: exact values inside and beyond the ramps, the
 *     ramp's smoothness, the overlap rule (lowest t wins, order-independent), clipping,
 *     empty regions, bad arguments;
 *   - the exact levels and level positions (tmap.h);
 *   - ctsr_set_timestep_map's errors (NULL clears, NaN, stride, a frame of another size);
 *   - the rectangle test: t = a in a rectangle, b outside; away from the border by the
 *     receptive field (ctsr_tile_overlap) the output equals the uniform-t output of a inside
 *     and of b outside (golden tolerance 1e-4), untiled and tiled, on the golden models and
 *     the shipped ctsr-x2-tiny; a uniform map equals the uniform path;
 *   - the map path against the C reference (ref.c: the same per-pixel FiLM, exact on levels
 *     and blended between them, computed independently), to the golden tolerance;
 *   - no seam: across the rectangle's border the output with the default transition takes
 *     at most 0.6 of the step a hard edge takes.
 * Fails (never skips) without a Vulkan device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctsr.h"
#include "model.h"
#include "tmap.h"
#include "util.h"

#define EXPECT(cond, ...) TU_EXPECT(cond, __VA_ARGS__)

static float *fmalloc(size_t n) { return malloc((n ? n : 1) * sizeof(float)); }

/* ---- rasteriser ---- */

static void test_fill(void)
{
    char err[256];
    const int w = 40, h = 30;
    float *m = fmalloc((size_t)w * h), *m2 = fmalloc((size_t)w * h);
    /* no region: base everywhere (clamped) */
    int r = ctsr_timestep_map_fill(m, w, h, w * 4, 1.5f, NULL, 0, 4.0f, err, sizeof err);
    int ok = r == 0;
    for (int i = 0; i < w * h; i++)
        ok &= m[i] == 1.0f;
    EXPECT(ok, "base only: %d %s", r, err);

    /* hard edges */
    ctsr_timestep_region reg = {10, 5, 12, 8, 0.25f};
    r = ctsr_timestep_map_fill(m, w, h, w * 4, 0.75f, &reg, 1, 0.0f, err, sizeof err);
    ok = r == 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int in = x >= 10 && x < 22 && y >= 5 && y < 13;
            ok &= m[y * w + x] == (in ? 0.25f : 0.75f);
        }
    EXPECT(ok, "hard-edged rectangle");

    /* a ramp of 6 pixels: exact inside and beyond, between in the ramp, smooth */
    r = ctsr_timestep_map_fill(m, w, h, w * 4, 0.75f, &reg, 1, 6.0f, err, sizeof err);
    int exact = r == 0, between = 1;
    float step = 0.0f;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const float v = m[y * w + x];
            const double dx = x + 0.5 < 10 ? 10 - (x + 0.5) : x + 0.5 > 22 ? x + 0.5 - 22 : 0;
            const double dy = y + 0.5 < 5 ? 5 - (y + 0.5) : y + 0.5 > 13 ? y + 0.5 - 13 : 0;
            const double d = sqrt(dx * dx + dy * dy);
            if (d == 0)
                exact &= v == 0.25f;
            else if (d >= 6)
                exact &= v == 0.75f;
            else
                between &= v > 0.25f && v < 0.75f;
            if (x > 0 && fabsf(v - m[y * w + x - 1]) > step)
                step = fabsf(v - m[y * w + x - 1]);
            if (y > 0 && fabsf(v - m[(y - 1) * w + x]) > step)
                step = fabsf(v - m[(y - 1) * w + x]);
        }
    /* smoothstep's steepest slope is 1.5 / width: 0.5 * 1.5 / 6 per pixel */
    EXPECT(exact && between && step <= 0.5f * 1.5f / 6.0f + 1e-6f,
           "ramp: exact %d, between %d, largest step %g", exact, between, step);

    /* overlaps: the lowest t wins, in any order; a partly outside and an empty region */
    ctsr_timestep_region regs[4] = {
        {5, 5, 20, 15, 0.6f}, {15, 10, 20, 15, 0.1f}, {-10, -4, 14, 10, 0.3f}, {30, 2, 0, 9, 0.0f}};
    ctsr_timestep_region rev[4] = {regs[3], regs[2], regs[1], regs[0]};
    r = ctsr_timestep_map_fill(m, w, h, w * 4, 1.0f, regs, 4, 3.0f, err, sizeof err);
    r |= ctsr_timestep_map_fill(m2, w, h, w * 4, 1.0f, rev, 4, 3.0f, err, sizeof err);
    EXPECT(r == 0 && !memcmp(m, m2, sizeof(float) * w * h), "region order changes the map");
    EXPECT(m[12 * w + 17] == 0.1f && m[7 * w + 7] == 0.6f && m[2 * w + 2] == 0.3f &&
               m[28 * w + 2] == 1.0f && m[5 * w + 30] == 1.0f,
           "overlap / clipping / empty region: %g %g %g %g %g", m[12 * w + 17], m[7 * w + 7],
           m[2 * w + 2], m[28 * w + 2], m[5 * w + 30]);

    /* a padded stride leaves the padding alone */
    const int sw = w + 3;
    float *ms = fmalloc((size_t)sw * h);
    for (int i = 0; i < sw * h; i++)
        ms[i] = -7.0f;
    r = ctsr_timestep_map_fill(ms, w, h, (size_t)sw * 4, 1.0f, regs, 4, 3.0f, err, sizeof err);
    ok = r == 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < sw; x++)
            ok &= x < w ? ms[y * sw + x] == m[y * w + x] : ms[y * sw + x] == -7.0f;
    EXPECT(ok, "padded stride");
    free(ms);

    /* bad arguments: an error with a message */
    struct { float *map; int w, h; size_t stride; float base, tr; const ctsr_timestep_region *r;
             int n; } bad[] = {
        {NULL, w, h, w * 4, 0, 1, NULL, 0}, {m, 0, h, w * 4, 0, 1, NULL, 0},
        {m, w, h, w * 4 - 4, 0, 1, NULL, 0}, {m, w, h, w * 4 + 2, 0, 1, NULL, 0},
        {m, w, h, w * 4, NAN, 1, NULL, 0}, {m, w, h, w * 4, 0, -1, NULL, 0},
        {m, w, h, w * 4, 0, INFINITY, NULL, 0}, {m, w, h, w * 4, 0, NAN, NULL, 0},
        {m, w, h, w * 4, 0, 1, NULL, 2}, {m, w, h, w * 4, 0, 1, regs, -1}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = 0;
        r = ctsr_timestep_map_fill(bad[i].map, bad[i].w, bad[i].h, bad[i].stride, bad[i].base,
                                   bad[i].r, bad[i].n, bad[i].tr, err, sizeof err);
        EXPECT(r == CTSR_E_INVALID && err[0], "bad fill argument %zu accepted: %d", i, r);
    }
    ctsr_timestep_region nan_reg = {1, 1, 3, 3, NAN};
    err[0] = 0;
    r = ctsr_timestep_map_fill(m, w, h, w * 4, 0, &nan_reg, 1, 1, err, sizeof err);
    EXPECT(r == CTSR_E_INVALID && strstr(err, "NaN"), "NaN region t: %d %s", r, err);
    free(m), free(m2);
}

/* ---- levels and level positions ---- */

static void test_levels(void)
{
    char err[256];
    const int w = 50, h = 40;
    const size_t n = (size_t)w * h;
    float *map = fmalloc(n), *u = fmalloc(n), lv[CTSR_TMAP_LEVELS];
    /* a region map: base 0.9, regions 0.3 and 0.0 with ramps: the flat values and the ends
     * are the levels, ramp values are not */
    const ctsr_timestep_region regs[2] = {{5, 5, 10, 8, 0.3f}, {30, 20, 12, 12, 0.0f}};
    int r = ctsr_timestep_map_fill(map, w, h, w * 4, 0.9f, regs, 2, 5.0f, err, sizeof err);
    int k = ctsr_tmap_levels(map, w, h, lv);
    EXPECT(r == 0 && k == 3 && lv[0] == 0.0f && lv[1] == 0.3f && lv[2] == 0.9f,
           "region map levels: %d (%g %g %g)", k, lv[0], lv[1], lv[2]);
    ctsr_tmap_positions(map, n, lv, k, u);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        const int l = (int)u[i];
        const float f = u[i] - l;
        ok &= l >= 0 && l < k && f >= 0 && f < 1 &&
              (f == 0 ? lv[l] == map[i]
                      : lv[l] < map[i] && fabsf(lv[l] + f * (lv[l + 1] - lv[l]) - map[i]) <= 1e-6f);
    }
    EXPECT(ok, "level positions");
    /* a gradient: only its ends; a lone pixel is no level, a 2 x 2 block is */
    for (size_t i = 0; i < n; i++)
        map[i] = 0.2f + 0.5f * (float)(i % w) / (w - 1);
    map[3 * w + 7] = 0.05f; /* the minimum, alone */
    map[9 * w + 9] = 0.5f;  /* alone: not flat */
    map[20 * w + 20] = map[20 * w + 21] = map[21 * w + 20] = map[21 * w + 21] = 0.6f;
    k = ctsr_tmap_levels(map, w, h, lv);
    EXPECT(k == 3 && lv[0] == 0.05f && lv[1] == 0.6f && lv[2] == 0.7f, "gradient levels: %d", k);
    /* -0 is 0; one-pixel-high maps use 2 x 1 blocks */
    const float line[6] = {-0.0f, 0.0f, 0.4f, 0.4f, 0.7f, 1.0f};
    k = ctsr_tmap_levels(line, 6, 1, lv);
    EXPECT(k == 3 && lv[0] == 0.0f && lv[1] == 0.4f && lv[2] == 1.0f, "line levels: %d", k);
    /* more flat values than levels: the ones filling the most blocks */
    for (size_t i = 0; i < n; i++)
        map[i] = (float)((i % w) / 2 + (i / w) / 2 * 25) / 1000.0f; /* 500 flat 2x2 cells */
    for (int x = 0; x < 20; x++) /* 0.9 fills 19 blocks */
        map[x] = map[w + x] = 0.9f;
    k = ctsr_tmap_levels(map, w, h, lv);
    int has = 0;
    for (int j = 0; j < k; j++)
        has |= lv[j] == 0.9f;
    EXPECT(k == CTSR_TMAP_LEVELS && has, "many flat values: %d levels, 0.9 %s", k,
           has ? "in" : "missing");
    free(map), free(u);
}

/* ---- the engine ---- */

static int load(ctsr_context *ctx, const char *path)
{
    char err[512];
    int r = ctsr_load_model_file(ctx, path, err, sizeof err);
    TU_CHECK(r == 0, "load %s: %s", path, err);
    return r;
}

static int run(ctsr_context *ctx, const float *img, int w, int h, float *out)
{
    char err[512];
    int r = ctsr_process_rgb_f32(ctx, img, w, h, out, err, sizeof err);
    TU_CHECK(r == 0, "process %dx%d: %s", w, h, err);
    return r;
}

/* smooth content with a few sharp edges (a synthetic "photo": gradients, a disc, bars) */
static void synth_image(float *img, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float *p = img + ((size_t)y * w + x) * 3;
            const float u = (float)x / w, v = (float)y / h;
            const float disc = (x - w * 0.3f) * (x - w * 0.3f) + (y - h * 0.6f) * (y - h * 0.6f) <
                                       (h * 0.2f) * (h * 0.2f)
                                   ? 0.3f
                                   : 0.0f;
            const float bars = (x / 5) % 2 && y > h / 2 ? 0.2f : 0.0f;
            p[0] = 0.2f + 0.5f * u + disc;
            p[1] = 0.3f + 0.4f * sinf(6.0f * v) * 0.5f + bars;
            p[2] = 0.6f - 0.3f * u * v + 0.1f * sinf(0.7f * x) * sinf(0.5f * y);
        }
}

static void test_api_errors(ctsr_context *ctx)
{
    char err[512];
    const int w = 12, h = 9, s = ctsr_scale(ctx);
    float map[12 * 9], img[12 * 9 * 3], out[12 * 9 * 3 * 16], out2[12 * 9 * 3 * 16];
    for (int i = 0; i < w * h; i++)
        map[i] = 0.5f;
    synth_image(img, w, h);
    int r = ctsr_set_timestep_map(ctx, map, w, h, w * 4 - 4, err, sizeof err);
    EXPECT(r == CTSR_E_INVALID && strstr(err, "stride"), "short stride: %d %s", r, err);
    r = ctsr_set_timestep_map(ctx, map, w, h, w * 4 + 1, err, sizeof err);
    EXPECT(r == CTSR_E_INVALID, "odd stride accepted");
    r = ctsr_set_timestep_map(ctx, map, 0, h, w * 4, err, sizeof err);
    EXPECT(r == CTSR_E_INVALID && err[0], "0 width accepted");
    map[5 * w + 7] = NAN;
    r = ctsr_set_timestep_map(ctx, map, w, h, w * 4, err, sizeof err);
    EXPECT(r == CTSR_E_INVALID && strstr(err, "NaN") && strstr(err, "(7, 5)"), "NaN: %d %s", r,
           err);
    /* out-of-range values are clamped: -3 and 7 act as 0 and 1 */
    map[5 * w + 7] = -3.0f;
    map[2] = 7.0f;
    r = ctsr_set_timestep_map(ctx, map, w, h, w * 4, err, sizeof err);
    r |= ctsr_process_rgb_f32(ctx, img, w, h, out, err, sizeof err);
    map[5 * w + 7] = 0.0f;
    map[2] = 1.0f;
    r |= ctsr_set_timestep_map(ctx, map, w, h, w * 4, err, sizeof err);
    r |= ctsr_process_rgb_f32(ctx, img, w, h, out2, err, sizeof err);
    EXPECT(r == 0 && !memcmp(out, out2, sizeof(float) * w * h * 3 * s * s), "clamping: %s", err);
    /* a frame of another size: a clear error; the map stays until cleared */
    err[0] = 0;
    r = ctsr_process_rgb_f32(ctx, img, w - 1, h, out, err, sizeof err);
    EXPECT(r == CTSR_E_INVALID && strstr(err, "12x9") && strstr(err, "11x9"),
           "size mismatch: %d %s", r, err);
    r = ctsr_set_timestep_map(ctx, NULL, 0, 0, 0, err, sizeof err);
    r |= ctsr_process_rgb_f32(ctx, img, w - 1, h, out, err, sizeof err);
    EXPECT(r == 0, "cleared map: %s", err);
}

/* max |a - b| over the output pixels (s x s per input pixel) of the input pixels sel selects */
typedef int (*pixel_sel)(int x, int y, const int *rect, int margin);
static float max_diff_where(const float *a, const float *b, int w, int h, int s, pixel_sel sel,
                            const int *rect, int margin, int *count)
{
    float d = 0.0f;
    *count = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (!sel(x, y, rect, margin))
                continue;
            ++*count;
            for (int i = 0; i < s; i++)
                for (int j = 0; j < s; j++)
                    for (int c = 0; c < 3; c++) {
                        const size_t o = (((size_t)y * s + i) * w * s + (size_t)x * s + j) * 3 + c;
                        const float e = fabsf(a[o] - b[o]);
                        d = e > d ? e : d;
                    }
        }
    return d;
}

/* Chebyshev distance of input pixel (x, y) from the rectangle, negative inside (-(distance
 * to its border)) */
static int cheb(int x, int y, const int *r)
{
    const int dx = x < r[0] ? r[0] - x : x >= r[0] + r[2] ? x - (r[0] + r[2] - 1) : 0;
    const int dy = y < r[1] ? r[1] - y : y >= r[1] + r[3] ? y - (r[1] + r[3] - 1) : 0;
    if (dx || dy)
        return dx > dy ? dx : dy;
    int in = x - r[0];
    if (r[0] + r[2] - 1 - x < in)
        in = r[0] + r[2] - 1 - x;
    if (y - r[1] < in)
        in = y - r[1];
    if (r[1] + r[3] - 1 - y < in)
        in = r[1] + r[3] - 1 - y;
    return -in;
}
/* inside, at least `margin` pixels from the border */
static int sel_inside(int x, int y, const int *r, int margin) { return cheb(x, y, r) <= -margin; }
/* outside, at least `margin` pixels away */
static int sel_outside(int x, int y, const int *r, int margin) { return cheb(x, y, r) >= margin; }

/* The rectangle test on one model: t = a inside rect, b outside, transition tr;
 * with tiles of `tile` pixels too (0: untiled only) and, when `uniform`, a uniform map
 * against the uniform path. */
static void rectangle_test(ctsr_context *ctx, const char *path, int w, int h, const int *rect,
                           float a, float b, float tr, int tile, int uniform)
{
    char err[512];
    if (load(ctx, path))
        return;
    const int s = ctsr_scale(ctx), margin = ctsr_tile_overlap(ctx);
    const size_t nin = (size_t)w * h * 3, nout = nin * s * s;
    float *img = fmalloc(nin), *ua = fmalloc(nout), *ub = fmalloc(nout), *m = fmalloc(nout),
          *mt = fmalloc(nout), *map = fmalloc((size_t)w * h);
    synth_image(img, w, h);
    ctsr_set_tile_size(ctx, 0, err, sizeof err);
    ctsr_set_timestep(ctx, a);
    run(ctx, img, w, h, ua);
    ctsr_set_timestep(ctx, b);
    run(ctx, img, w, h, ub);
    const ctsr_timestep_region reg = {rect[0], rect[1], rect[2], rect[3], a};
    int r = ctsr_timestep_map_fill(map, w, h, (size_t)w * 4, b, &reg, 1, tr, err, sizeof err);
    r |= ctsr_set_timestep_map(ctx, map, w, h, (size_t)w * 4, err, sizeof err);
    TU_CHECK(r == 0, "map: %s", err);
    run(ctx, img, w, h, m);
    /* tiled: tiles read the map at their frame offset */
    int T = 0;
    if (tile) {
        ctsr_set_tile_size(ctx, tile, err, sizeof err);
        T = ctsr_effective_tile_size(ctx, w, h);
        run(ctx, img, w, h, mt);
        ctsr_set_tile_size(ctx, 0, err, sizeof err);
    } else {
        memcpy(mt, m, nout * sizeof *m);
    }
    ctsr_set_timestep_map(ctx, NULL, 0, 0, 0, err, sizeof err);
    int nin_px, nout_px;
    const float din = max_diff_where(m, ua, w, h, s, sel_inside, rect, margin, &nin_px);
    /* beyond the ramp (exactly b there) and the receptive field */
    const float dout = max_diff_where(m, ub, w, h, s, sel_outside, rect,
                                      (int)ceilf(tr) + margin + 1, &nout_px);
    const float dab = tu_max_abs_diff(ua, ub, nout), dtile = tu_max_abs_diff(m, mt, nout);
    printf("%-26s %dx%d rect %d,%d %dx%d t=%g in / %g out, transition %g, margin %d: "
           "inside (%d px) %.3g, outside (%d px) %.3g, %d-px tiles vs untiled %.3g "
           "(uniform %g vs %g differ by %.3g)\n",
           path + (strrchr(path, '/') ? strrchr(path, '/') - path + 1 : 0), w, h, rect[0],
           rect[1], rect[2], rect[3], a, b, tr, margin, nin_px, din, nout_px, dout,
           T, dtile, a, b, dab);
    EXPECT(nin_px > 0 && nout_px > 0, "test geometry leaves no pixels to compare");
    EXPECT(din <= 1e-4f && dout <= 1e-4f, "%s: inside %g, outside %g > 1e-4", path, din, dout);
    EXPECT(dtile <= 1e-5f && (!tile || T < w), "%s: tiled (%d) map differs by %g", path, T,
           dtile);
    /* the model depends on t (or the test would prove nothing) */
    EXPECT(dab > 1e-2f, "%s: t = %g and %g give nearly the same output (%g)", path, a, b, dab);

    /* a uniform map equals the uniform path */
    for (int i = 0; uniform && i < w * h; i++)
        map[i] = 0.37f;
    if (uniform) {
        ctsr_set_timestep(ctx, 0.37f);
        run(ctx, img, w, h, ua);
        ctsr_set_timestep_map(ctx, map, w, h, (size_t)w * 4, err, sizeof err);
        run(ctx, img, w, h, m);
        ctsr_set_timestep_map(ctx, NULL, 0, 0, 0, err, sizeof err);
        const float du = tu_max_abs_diff(ua, m, nout);
        EXPECT(du <= 1e-6f, "%s: uniform map vs uniform t: %g", path, du);
    }
    free(img), free(ua), free(ub), free(m), free(mt), free(map);
}

/* The map path (ramps: FiLM blended between levels) against ref.c's forward with the same
 * per-pixel FiLM computed independently, to the golden tolerance. */
static void vs_reference(ctsr_context *ctx, const char *path)
{
    char err[512];
    ctsr_model *model;
    if (load(ctx, path) || ctsr_model_load_file(path, &model, err, sizeof err)) {
        TU_CHECK(0, "load %s", path);
        return;
    }
    const int w = 40, h = 32, s = ctsr_scale(ctx);
    const size_t nin = (size_t)w * h * 3, nout = nin * s * s;
    float *img = fmalloc(nin), *ref = fmalloc(nout), *out = fmalloc(nout), *map = fmalloc(w * h);
    synth_image(img, w, h);
    const ctsr_timestep_region regs[2] = {{6, 5, 14, 12, 0.0f}, {24, 14, 10, 12, 0.8f}};
    int r = ctsr_timestep_map_fill(map, w, h, w * 4, 1.0f, regs, 2, 6.0f, err, sizeof err);
    r |= ctsr_set_timestep_map(ctx, map, w, h, w * 4, err, sizeof err);
    r |= ctsr_process_rgb_f32(ctx, img, w, h, out, err, sizeof err);
    ctsr_set_timestep_map(ctx, NULL, 0, 0, 0, err, sizeof err);
    TU_CHECK(r == 0, "map frame: %s", err);
    float lv[CTSR_TMAP_LEVELS];
    const int nl = ctsr_tmap_levels(map, w, h, lv);
    r = ctsr_ref_forward_tmap(model, map, lv, nl, img, h, w, ref);
    TU_CHECK(r == 0, "reference forward: %d", r);
    const float d = tu_max_abs_diff(ref, out, nout);
    double sum = 0;
    for (size_t i = 0; i < nout; i++)
        sum += fabs(ref[i] - out[i]);
    printf("%-26s map (%d levels, ramps of 6 px) vs the C reference: max %.3g, mean %.3g\n",
           path + (strrchr(path, '/') ? strrchr(path, '/') - path + 1 : 0), nl, d, sum / nout);
    EXPECT(d <= 1e-4f, "%s: map path vs reference %g", path, d);
    free(img), free(ref), free(out), free(map);
    ctsr_model_free(model);
}

/* No seam: across the left border of a rectangle (t = 0 inside, 1 outside) on smooth
 * content, the largest step between horizontally adjacent output pixels of the map output
 * beyond the larger of the two uniform outputs' steps there, relative to the largest
 * |uniform 0 - uniform 1|. A hard edge jumps by about the t-difference; the default
 * transition must take at most 0.6 of that (measured: 0.51 on ctsr-x2-tiny, 0.55 on
 * ctsr-x2; docs/roi.md). */
static void seam_test(ctsr_context *ctx, const char *path)
{
    char err[512];
    if (load(ctx, path))
        return;
    const int w = 96, h = 40, s = ctsr_scale(ctx), W = w * s;
    const size_t nout = (size_t)w * h * 3 * s * s;
    float *img = fmalloc((size_t)w * h * 3), *u0 = fmalloc(nout), *u1 = fmalloc(nout),
          *m = fmalloc(nout), *map = fmalloc(w * h);
    for (int y = 0; y < h; y++) /* smooth: a gentle gradient */
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                img[((size_t)y * w + x) * 3 + c] = 0.3f + 0.4f * (float)(x + c * y) / (w + 2 * h);
    ctsr_set_timestep(ctx, 0.0f);
    run(ctx, img, w, h, u0);
    ctsr_set_timestep(ctx, 1.0f);
    run(ctx, img, w, h, u1);
    float scale = tu_max_abs_diff(u0, u1, nout);
    const ctsr_timestep_region reg = {w / 2, -5, w, h + 10, 0.0f}; /* edge at x = w / 2 */
    const float widths[] = {0.0f, (float)ctsr_default_transition(ctx), 2, 4, 8, 16, 32};
    const int nw = getenv("CTSR_SEAM_WIDTHS") ? 7 : 2; /* all: for docs/roi.md */
    float jump[7];
    for (int k = 0; k < nw; k++) {
        ctsr_timestep_map_fill(map, w, h, w * 4, 1.0f, &reg, 1, widths[k], err, sizeof err);
        ctsr_set_timestep_map(ctx, map, w, h, w * 4, err, sizeof err);
        run(ctx, img, w, h, m);
        jump[k] = 0.0f;
        for (int y = 0; y < h * s; y++)
            for (int x = 1; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    const size_t o = ((size_t)y * W + x) * 3 + c, p = o - 3;
                    const float g0 = fabsf(u0[o] - u0[p]), g1 = fabsf(u1[o] - u1[p]);
                    const float j = fabsf(m[o] - m[p]) - (g0 > g1 ? g0 : g1);
                    jump[k] = j > jump[k] ? j : jump[k];
                }
        jump[k] /= scale;
        printf("%-26s seam (largest step between neighbours beyond both uniform outputs' "
               "steps / max |uniform 0 - uniform 1|), transition %g px%s: %.3f\n",
               path + (strrchr(path, '/') ? strrchr(path, '/') - path + 1 : 0), widths[k],
               k == 1 ? " (default)" : "", jump[k]);
    }
    ctsr_set_timestep_map(ctx, NULL, 0, 0, 0, err, sizeof err);
    EXPECT(widths[1] > 0 && jump[1] <= 0.6f * jump[0], "%s: seam %g with the default "
           "transition, %g with a hard edge", path, jump[1], jump[0]);
    free(img), free(u0), free(u1), free(m), free(map);
}

int main(void)
{
    char err[512];
    ctsr_context *ctx;
    test_fill();
    test_levels();
    if (ctsr_context_create(&(ctsr_options){.device_index = -1, .precision = CTSR_PRECISION_FP32},
                            &ctx, err, sizeof err)) {
        fprintf(stderr, "no Vulkan context: %s\n", err);
        TU_CHECK(0, "a Vulkan device is required for this test");
        return tu_finish("engine-tmap", tu_passed);
    }
    printf("device: %s\n", ctsr_device_name(ctx));
    /* a map may be set before any model, and survives loads */
    float one = 0.5f;
    EXPECT(ctsr_set_timestep_map(ctx, &one, 1, 1, 4, err, sizeof err) == 0, "no model: %s", err);
    ctsr_set_timestep_map(ctx, NULL, 0, 0, 0, err, sizeof err);
    char path[1024];
    snprintf(path, sizeof path, "%s", tu_data_path("golden_small.safetensors"));
    if (!load(ctx, path))
        test_api_errors(ctx);
    /* overlap 16 (small, tiny; ramps of 4): 12 x 4 interior pixels, bands of 4 to 12 pixels
     * outside; overlap 32 (default; hard edges, to keep the frame small): 4 x 2 interior
     * pixels, bands of 2 to 4 outside */
    static const int rect_small[4] = {28, 24, 44, 36}, rect_default[4] = {36, 34, 68, 66};
    rectangle_test(ctx, tu_data_path("golden_small.safetensors"), 104, 88, rect_small, 0.0f,
                   1.0f, 4.0f, 24, 1);
    rectangle_test(ctx, tu_data_path("golden_tiny.safetensors"), 104, 88, rect_small, 0.2f,
                   0.9f, 4.0f, 24, 1);
    rectangle_test(ctx, tu_data_path("golden_default.safetensors"), 140, 136, rect_default,
                   0.0f, 1.0f, 0.0f, 0, 0);
    const char *root = getenv("CTSR_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/models/ctsr-x2-tiny.safetensors", root ? root : ".");
    rectangle_test(ctx, path, 104, 88, rect_small, 0.0f, 1.0f, 4.0f, 24, 1);
    /* fp16 activation storage (the shaders' f16 variants), where the device has it */
    ctsr_context *c16;
    if (ctsr_context_create(&(ctsr_options){.device_index = -1, .precision = CTSR_PRECISION_FP16},
                            &c16, err, sizeof err)) {
        printf("fp16 storage not offered by this device (%s): fp16 map path not tested\n", err);
    } else {
        printf("fp16 storage:\n");
        rectangle_test(c16, tu_data_path("golden_tiny.safetensors"), 104, 88, rect_small, 0.0f,
                       1.0f, 4.0f, 24, 1);
        ctsr_context_destroy(c16);
    }
    vs_reference(ctx, tu_data_path("golden_tiny.safetensors"));
    vs_reference(ctx, path);
    seam_test(ctx, path);
    if (getenv("CTSR_SEAM_WIDTHS")) { /* the default model too, for docs/roi.md */
        snprintf(path, sizeof path, "%s/models/ctsr-x2.safetensors", root ? root : ".");
        seam_test(ctx, path);
    }
    ctsr_context_destroy(ctx);
    return tu_finish("engine-tmap", tu_passed);
}
