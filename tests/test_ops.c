/* vulkan-ops: each compute shader against its plain C reference (engine/ref.c) on random data
 * and awkward shapes. Fails (never skips) when no Vulkan device is found. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctsr.h"
#include "model.h"
#include "ops.h"
#include "tmap.h"
#include "util.h"

static uint32_t seed = 12345;
static const int sizes[][2] = {{1, 1}, {7, 5}, {33, 17}, {5, 40}, {64, 3}};
#define NSIZES (int)(sizeof sizes / sizeof *sizes)
static int passed;

static float *rnd(size_t n, float lo, float hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    tu_rand_fill(x, n, lo, hi, &seed);
    return x;
}

static void check(const char *what, const float *a, const float *b, size_t n, float tol)
{
    float d = tu_max_abs_diff(a, b, n);
    TU_CHECK(d <= tol, "%s: max diff %g > %g", what, d, tol);
    passed += d <= tol;
}

static void test_conv(ctsr_context *ctx)
{
    static const struct { int cin, cout, k; } shapes[] = {
        {3, 32, 3}, {32, 32, 3}, {32, 12, 3}, {12, 12, 3}, {8, 48, 3},
        {32, 96, 1}, {64, 32, 1}, {12, 36, 1}, {4, 4, 3}};
    char err[512], what[160];
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int zi = 0; zi < NSIZES; zi++) {
            const int h = sizes[zi][0], w = sizes[zi][1];
            const int cin = shapes[si].cin, cout = shapes[si].cout, k = shapes[si].k;
            ctsr_layer l = {rnd((size_t)cout * cin * k * k, -0.3f, 0.3f), rnd(cout, -0.5f, 0.5f),
                            cout, cin, k};
            float *in = rnd((size_t)h * w * cin, -1, 1);
            float *ref = malloc(sizeof(float) * h * w * cout), *out = malloc(sizeof(float) * h * w * cout);
            float *film = rnd(2 * (size_t)cout, -0.5f, 0.5f);
            float *res = rnd((size_t)h * w * cout, -1, 1);
            const int mode = (int)((si + zi) % 3), act = mode ? CTSR_ACT_NONE : (int)(zi % 5);
            if (k == 3)
                ctsr_ref_conv3x3(in, h, w, &l, ref);
            else
                ctsr_ref_conv1x1(in, h, w, &l, ref);
            for (size_t i = 0; i < (size_t)h * w * cout; i++) {
                const int c = (int)(i % cout);
                if (mode == 1)
                    ref[i] = res[i] + ref[i] * (1 + film[c]) + film[cout + c];
                else if (mode == 2)
                    ref[i] += res[i];
            }
            if (mode == 0)
                ctsr_ref_act(ref, (size_t)h * w * cout, act);
            memcpy(out, res, sizeof(float) * h * w * cout);
            int r = ctsr_op_conv(ctx, in, h, w, &l, act, mode, film, out, err, sizeof err);
            TU_CHECK(r == 0, "conv: %s", err);
            snprintf(what, sizeof what, "conv%dx%d %d->%d %dx%d mode %d act %d", k, k, cin, cout, h,
                     w, mode, act);
            check(what, ref, out, (size_t)h * w * cout, 1e-4f);
            free(l.w), free(l.b), free(in), free(ref), free(out), free(film), free(res);
        }
}

/* MODE 3 (FiLM per pixel from a table of levels and a map of level positions) against
 * ctsr_ref_film_lookup: regions at an offset inside a larger map (as tiles read it), positions
 * on exact levels (integers) and between levels */
static void test_conv_film_map(ctsr_context *ctx)
{
    static const struct { int cin, cout; } shapes[] = {{32, 32}, {12, 12}, {8, 4}, {4, 48}};
    static const struct { int h, w, fw, fh, rx, ry; } regions[] = {
        {1, 1, 1, 1, 0, 0}, {7, 5, 5, 7, 0, 0}, {33, 17, 30, 50, 9, 13}, {5, 40, 41, 9, 1, 4}};
    char err[512], what[160];
    const int nlev = 5;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (size_t ri = 0; ri < sizeof regions / sizeof *regions; ri++) {
            const int cin = shapes[si].cin, cout = shapes[si].cout;
            const int h = regions[ri].h, w = regions[ri].w, fw = regions[ri].fw,
                      fh = regions[ri].fh, rx = regions[ri].rx, ry = regions[ri].ry;
            const size_t n = (size_t)h * w * cout;
            ctsr_layer l = {rnd((size_t)cout * cin * 9, -0.3f, 0.3f), rnd(cout, -0.5f, 0.5f),
                            cout, cin, 3};
            float *in = rnd((size_t)h * w * cin, -1, 1), *res = rnd(n, -1, 1);
            float *table = rnd((size_t)nlev * 2 * cout, -0.5f, 0.5f);
            float *pos = rnd((size_t)fw * fh, 0, (float)(nlev - 1));
            for (size_t i = 0; i < (size_t)fw * fh; i += 3) /* every third on a level */
                pos[i] = (float)(int)pos[i];
            if (ri % 2) /* runs of 8 equal positions: the shader's one-lookup path */
                for (size_t i = 0; i < (size_t)fw * fh; i++)
                    pos[i] = pos[i / 8 * 8];
            pos[0] = (float)(nlev - 1); /* the last level: nothing to interpolate towards */
            float *ref = malloc(n * sizeof *ref), *out = malloc(n * sizeof *out);
            ctsr_ref_conv3x3(in, h, w, &l, ref);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    const float u = pos[(size_t)(ry + y) * fw + rx + x];
                    for (int c = 0; c < cout; c++) {
                        const size_t i = ((size_t)y * w + x) * cout + c;
                        const float g = ctsr_ref_film_lookup(table, 2 * cout, u, c);
                        const float b = ctsr_ref_film_lookup(table, 2 * cout, u, cout + c);
                        ref[i] = res[i] + ref[i] * (1 + g) + b;
                    }
                }
            memcpy(out, res, n * sizeof *out);
            int r = ctsr_op_conv_film_map(ctx, in, h, w, &l, table, nlev, pos, fw, fh, rx, ry,
                                          out, err, sizeof err);
            TU_CHECK(r == 0, "conv film map: %s", err);
            snprintf(what, sizeof what, "conv3x3 %d->%d %dx%d at (%d,%d) of %dx%d FiLM map", cin,
                     cout, h, w, rx, ry, fw, fh);
            check(what, ref, out, n, 1e-4f);
            free(l.w), free(l.b), free(in), free(res), free(table), free(pos), free(ref), free(out);
        }
}

static void test_layernorm(ctsr_context *ctx)
{
    char err[512], what[96];
    const int cs[] = {4, 12, 32};
    for (int ci = 0; ci < 3; ci++)
        for (int zi = 0; zi < NSIZES; zi++) {
            const int h = sizes[zi][0], w = sizes[zi][1], c = cs[ci];
            float *in = rnd((size_t)h * w * c, -2, 3), *g = rnd(c, 0.5f, 1.5f), *b = rnd(c, -1, 1);
            float *ref = malloc(sizeof(float) * h * w * c), *out = malloc(sizeof(float) * h * w * c);
            ctsr_ref_layernorm(in, h, w, c, g, b, ref);
            int r = ctsr_op_layernorm(ctx, in, h, w, c, g, b, out, err, sizeof err);
            TU_CHECK(r == 0, "layernorm: %s", err);
            snprintf(what, sizeof what, "layernorm c=%d %dx%d", c, h, w);
            check(what, ref, out, (size_t)h * w * c, 1e-4f);
            free(in), free(g), free(b), free(ref), free(out);
        }
}

/* MODE 4: LayerNorm folded into the 1x1 conv after it, against LayerNorm then the conv */
static void test_conv_ln(ctsr_context *ctx)
{
    static const struct { int cin, cout, act; } shapes[] = {
        {32, 96, CTSR_ACT_NONE}, {32, 64, CTSR_ACT_GELU}, {12, 36, CTSR_ACT_NONE},
        {12, 24, CTSR_ACT_GELU}, {4, 8, CTSR_ACT_RELU}, {64, 12, CTSR_ACT_NONE}};
    char err[512], what[160];
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int zi = 0; zi < NSIZES; zi++) {
            const int h = sizes[zi][0], w = sizes[zi][1];
            const int cin = shapes[si].cin, cout = shapes[si].cout, act = shapes[si].act;
            const size_t np = (size_t)h * w;
            ctsr_layer l = {rnd((size_t)cout * cin, -0.3f, 0.3f), rnd(cout, -0.5f, 0.5f), cout,
                            cin, 1};
            float *in = rnd(np * cin, -2, 3), *g = rnd(cin, 0.5f, 1.5f), *b = rnd(cin, -1, 1);
            float *ln = malloc(sizeof(float) * np * cin);
            float *ref = malloc(sizeof(float) * np * cout), *out = malloc(sizeof(float) * np * cout);
            ctsr_ref_layernorm(in, h, w, cin, g, b, ln);
            ctsr_ref_conv1x1(ln, h, w, &l, ref);
            ctsr_ref_act(ref, np * cout, act);
            int r = ctsr_op_conv_ln(ctx, in, h, w, &l, g, b, act, out, err, sizeof err);
            TU_CHECK(r == 0, "conv ln: %s", err);
            snprintf(what, sizeof what, "layernorm + conv1x1 %d->%d %dx%d act %d", cin, cout, h,
                     w, act);
            check(what, ref, out, np * cout, 1e-4f);
            free(l.w), free(l.b), free(in), free(g), free(b), free(ln), free(ref), free(out);
        }
}

static void test_wattn(ctsr_context *ctx)
{
    /* windows of 4, 8 and 16 (4 query rows per invocation), 6 (2 rows) and 3 (1 row) */
    static const struct { int c, heads, win; } cfg[] = {
        {8, 2, 4}, {32, 2, 8}, {12, 1, 8}, {16, 4, 3}, {8, 1, 16}, {8, 2, 6}};
    char err[512], what[96];
    for (size_t ci = 0; ci < sizeof cfg / sizeof *cfg; ci++)
        for (int zi = 0; zi < NSIZES; zi++) {
            const int h = sizes[zi][0], w = sizes[zi][1], c = cfg[ci].c;
            float *qkv = rnd((size_t)h * w * 3 * c, -2, 2);
            float *ref = malloc(sizeof(float) * h * w * c), *out = malloc(sizeof(float) * h * w * c);
            ctsr_ref_window_attn(qkv, h, w, c, cfg[ci].heads, cfg[ci].win, ref);
            int r = ctsr_op_wattn(ctx, qkv, h, w, c, cfg[ci].heads, cfg[ci].win, out, err, sizeof err);
            TU_CHECK(r == 0, "wattn: %s", err);
            snprintf(what, sizeof what, "wattn c=%d heads=%d win=%d %dx%d", c, cfg[ci].heads,
                     cfg[ci].win, h, w);
            check(what, ref, out, (size_t)h * w * c, 1e-4f);
            free(qkv), free(ref), free(out);
        }
}

static void test_output(ctsr_context *ctx)
{
    char err[512], what[96];
    for (int s = 2; s <= 4; s++)
        for (int zi = 0; zi < NSIZES; zi++) {
            const int h = sizes[zi][0], w = sizes[zi][1];
            const size_t no = (size_t)h * w * s * s * 3;
            float *tail = rnd((size_t)h * w * 3 * s * s, -0.4f, 0.4f), *img = rnd((size_t)h * w * 3, 0, 1);
            float *ref = malloc(no * sizeof *ref), *out = malloc(no * sizeof *out);
            ctsr_ref_shuffle_residual(tail, img, h, w, s, ref);
            int r = ctsr_op_output(ctx, tail, img, h, w, s, out, err, sizeof err);
            TU_CHECK(r == 0, "output: %s", err);
            snprintf(what, sizeof what, "shuffle+residual x%d %dx%d", s, h, w);
            check(what, ref, out, no, 1e-5f);
            free(tail), free(img), free(ref), free(out);
        }
}

static void test_unpack(ctsr_context *ctx)
{
    char err[512];
    const int h = 7, w = 33;
    uint8_t *in = malloc((size_t)h * w * 4);
    float *ref = malloc(sizeof(float) * h * w * 4), *out = malloc(sizeof(float) * h * w * 4);
    for (int i = 0; i < h * w * 4; i++) {
        in[i] = (uint8_t)(i * 37 + 11);
        ref[i] = in[i] / 255.0f;
    }
    int r = ctsr_op_unpack_rgba8(ctx, in, h, w, out, err, sizeof err);
    TU_CHECK(r == 0, "unpack: %s", err);
    check("unpack rgba8 7x33", ref, out, (size_t)h * w * 4, 1e-6f);
    free(in), free(ref), free(out);
}

int main(void)
{
    char err[512];
    ctsr_context *ctx;
    /* twice: convolutions with subgroup shuffles (where offered), then without */
    for (int variant = 0; variant < 2; variant++) {
    if (variant)
        setenv("CTSR_NO_SUBGROUP_SHUFFLE", "1", 1);
    if (ctsr_context_create(&(ctsr_options){.device_index = -1, .precision = CTSR_PRECISION_FP32},
                            &ctx, err, sizeof err)) {
        fprintf(stderr, "no Vulkan context: %s\n", err);
        TU_CHECK(0, "a Vulkan device is required for this test");
        return tu_finish("vulkan-ops", 0);
    }
    printf("device: %s%s\n", ctsr_device_name(ctx), variant ? " (no subgroup shuffle)" : "");
    test_conv(ctx);
    test_conv_film_map(ctx);
    test_conv_ln(ctx);
    if (!variant) {
        test_layernorm(ctx);
        test_wattn(ctx);
        test_output(ctx);
        test_unpack(ctx);
    }
    ctsr_context_destroy(ctx);
    }
    return tu_finish("vulkan-ops", passed);
}
