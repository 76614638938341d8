/* The plain C reference of the whole network against the PyTorch golden vectors
 * (training/ctsr/golden.py), and the reference window attention against a brute-force
 * formula of the edge rule. */
#include "ctsr.h"
#include "model.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-4f


static void golden_set(const char *name)
{
    char fn[128], path[4096], err[512];
    snprintf(fn, sizeof fn, "golden_%s.safetensors", name);
    snprintf(path, sizeof path, "%s", tu_data_path(fn));
    ctsr_model *m = NULL;
    int rc = ctsr_model_load_file(path, &m, err, sizeof err);
    TU_EXPECT(rc == 0, "%s: %s (generate: cd training && python3 -m ctsr.golden --out ../tests/data)",
          name, err);
    if (rc)
        return;
    snprintf(fn, sizeof fn, "golden_%s.bin", name);
    snprintf(path, sizeof path, "%s", tu_data_path(fn));
    tu_golden g;
    rc = tu_golden_load(path, &g);
    TU_EXPECT(rc == 0, "%s: cannot read golden vectors %s", name, path);
    if (rc) {
        ctsr_model_free(m);
        return;
    }
    TU_EXPECT(g.scale == m->cfg.scale, "%s: golden scale %d, model scale %d", name, g.scale,
          m->cfg.scale);
    if (g.scale == m->cfg.scale) {
        size_t n_out = (size_t)g.h * g.scale * g.w * g.scale * 3;
        float *out = malloc(n_out * sizeof *out);
        for (int i = 0; i < g.n_t; i++) {
            rc = ctsr_ref_forward(m, g.t[i], g.input, g.h, g.w, out);
            TU_EXPECT(rc == 0, "%s: ctsr_ref_forward returned %d", name, rc);
            float d = tu_max_abs_diff(out, g.output + (size_t)i * n_out, n_out);
            TU_EXPECT(d <= TOL, "%s t=%g: max abs diff %.3g > %.0e", name, g.t[i], d, TOL);
            printf("  %-8s %2dx%-2d x%d  t=%-5g max abs diff %.3g\n", name, g.h, g.w, g.scale,
                   g.t[i], d);
        }
        free(out);
    }
    tu_golden_free(&g);
    ctsr_model_free(m);
}

/* attention of one pixel computed directly: keys = pixels of the image whose w x w cell
 * (grid anchored at 0, 0) equals the query's */
static void attn_brute(const float *qkv, int h, int w, int c, int heads, int win, int y, int x,
                       double *out)
{
    int d = c / heads;
    for (int hd = 0; hd < heads; hd++) {
        const float *q = qkv + ((size_t)y * w + x) * 3 * c + hd * d;
        double mx = -INFINITY;
        for (int ky = 0; ky < h; ky++)
            for (int kx = 0; kx < w; kx++) {
                if (ky / win != y / win || kx / win != x / win)
                    continue;
                const float *k = qkv + ((size_t)ky * w + kx) * 3 * c + c + hd * d;
                double s = 0;
                for (int i = 0; i < d; i++)
                    s += (double)q[i] * k[i];
                mx = fmax(mx, s / sqrt((double)d));
            }
        double sum = 0, acc[64] = {0};
        for (int ky = 0; ky < h; ky++)
            for (int kx = 0; kx < w; kx++) {
                if (ky / win != y / win || kx / win != x / win)
                    continue;
                const float *k = qkv + ((size_t)ky * w + kx) * 3 * c + c + hd * d;
                const float *v = k + c;
                double s = 0;
                for (int i = 0; i < d; i++)
                    s += (double)q[i] * k[i];
                double e = exp(s / sqrt((double)d) - mx);
                sum += e;
                for (int i = 0; i < d; i++)
                    acc[i] += e * v[i];
            }
        for (int i = 0; i < d; i++)
            out[hd * d + i] = acc[i] / sum;
    }
}

static void test_window_attn(int h, int w, int c, int heads, int win, uint32_t seed)
{
    size_t np = (size_t)h * w;
    float *qkv = malloc(np * 3 * c * sizeof *qkv);
    float *out = malloc(np * c * sizeof *out);
    tu_rand_fill(qkv, np * 3 * c, -2.0f, 2.0f, &seed);
    ctsr_ref_window_attn(qkv, h, w, c, heads, win, out);
    double md = 0, want[64];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            attn_brute(qkv, h, w, c, heads, win, y, x, want);
            for (int i = 0; i < c; i++)
                md = fmax(md, fabs(out[((size_t)y * w + x) * c + i] - want[i]));
        }
    TU_EXPECT(md < 1e-5, "window attn %dx%d C=%d heads=%d w=%d: max diff %.3g", h, w, c, heads,
          win, md);
    printf("  window attn %2dx%-2d C=%-2d heads=%d w=%-2d max diff vs brute force %.3g\n", h, w,
           c, heads, win, md);
    free(qkv);
    free(out);
}

/* the other operators on tiny hand-checkable cases */
static void test_small_ops(void)
{
    /* pixel shuffle + bilinear of a constant image: out = tail value + constant */
    {
        const int h = 2, w = 3, s = 2;
        float tail[2 * 3 * 12], img[2 * 3 * 3], out[4 * 6 * 3];
        for (int i = 0; i < h * w * 3; i++)
            img[i] = 0.25f;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < 12; ch++)
                    tail[(y * w + x) * 12 + ch] = 0.01f * ch + 0.1f * y + 0.001f * x;
        ctsr_ref_shuffle_residual(tail, img, h, w, s, out);
        float md = 0;
        for (int oy = 0; oy < h * s; oy++)
            for (int ox = 0; ox < w * s; ox++)
                for (int c = 0; c < 3; c++) {
                    int y = oy / s, i = oy % s, x = ox / s, j = ox % s;
                    float want = 0.25f + 0.01f * (c * 4 + i * 2 + j) + 0.1f * y + 0.001f * x;
                    md = fmaxf(md, fabsf(out[(oy * w * s + ox) * 3 + c] - want));
                }
        TU_EXPECT(md < 1e-6, "pixel shuffle: max diff %g", md);
    }
    /* bilinear x2 of a 1-D ramp along x: PyTorch gives [0, .25, .75, 1.25, 1.75, 2] * k */
    {
        float tail[1 * 4 * 12] = {0}, img[1 * 4 * 3], out[2 * 8 * 3];
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 3; c++)
                img[x * 3 + c] = 0.1f * x;
        ctsr_ref_shuffle_residual(tail, img, 1, 4, 2, out);
        const float want[8] = {0, 0.025f, 0.075f, 0.125f, 0.175f, 0.225f, 0.275f, 0.3f};
        float md = 0;
        for (int oy = 0; oy < 2; oy++)
            for (int ox = 0; ox < 8; ox++)
                md = fmaxf(md, fabsf(out[(oy * 8 + ox) * 3 + 1] - want[ox]));
        TU_EXPECT(md < 1e-6, "bilinear ramp: max diff %g", md);
        /* clamping */
        for (int i = 0; i < 12 * 4; i++)
            tail[i] = i % 2 ? 5.0f : -5.0f;
        ctsr_ref_shuffle_residual(tail, img, 1, 4, 2, out);
        int clamped = 1;
        for (int i = 0; i < 2 * 8 * 3; i++)
            clamped &= out[i] == 0.0f || out[i] == 1.0f;
        TU_EXPECT(clamped, "output not clamped to [0, 1]");
    }
    /* activations */
    {
        float x[5] = {-2.0f, -0.5f, 0.0f, 0.5f, 3.0f}, y[5];
        memcpy(y, x, sizeof x);
        ctsr_ref_act(y, 5, CTSR_ACT_RELU);
        TU_EXPECT(y[0] == 0 && y[1] == 0 && y[3] == 0.5f && y[4] == 3.0f, "relu");
        memcpy(y, x, sizeof x);
        ctsr_ref_act(y, 5, CTSR_ACT_LRELU);
        TU_EXPECT(fabsf(y[0] + 0.2f) < 1e-7f && fabsf(y[1] + 0.05f) < 1e-7f && y[4] == 3.0f,
              "lrelu");
        memcpy(y, x, sizeof x);
        ctsr_ref_act(y, 5, CTSR_ACT_SILU);
        TU_EXPECT(fabsf(y[0] - (-0.23840584f)) < 1e-6f && fabsf(y[4] - 2.8577223f) < 1e-6f, "silu");
        memcpy(y, x, sizeof x);
        ctsr_ref_act(y, 5, CTSR_ACT_GELU);
        /* torch.nn.functional.gelu(x, approximate="tanh") */
        TU_EXPECT(fabsf(y[0] - (-0.04540231f)) < 1e-6f && fabsf(y[1] - (-0.15428599f)) < 1e-6f &&
                  y[2] == 0.0f && fabsf(y[3] - 0.34571401f) < 1e-6f &&
                  fabsf(y[4] - 2.99636269f) < 1e-6f,
              "gelu: %.8f %.8f %.8f %.8f", y[0], y[1], y[3], y[4]);
        memcpy(y, x, sizeof x);
        ctsr_ref_act(y, 5, CTSR_ACT_NONE);
        TU_EXPECT(!memcmp(x, y, sizeof x), "act none");
    }
    /* layernorm of [1, 2, 3, 4]: mean 2.5, var 1.25 */
    {
        float x[4] = {1, 2, 3, 4}, g[4] = {1, 2, 1, 1}, b[4] = {0, 0, 0, 1}, y[4];
        ctsr_ref_layernorm(x, 1, 1, 4, g, b, y);
        double r = 1.0 / sqrt(1.25 + 1e-5);
        TU_EXPECT(fabs(y[0] + 1.5 * r) < 1e-6 && fabs(y[1] + 1.0 * r) < 1e-6 &&
                  fabs(y[2] - 0.5 * r) < 1e-6 && fabs(y[3] - (1.5 * r + 1)) < 1e-6,
              "layernorm %g %g %g %g", y[0], y[1], y[2], y[3]);
    }
    /* 3x3 conv zero padding: all-ones 3x3 kernel on all-ones 3x3 image counts neighbours */
    {
        float img[9 * 2], out[9], w[2 * 9], b = 0.5f;
        for (int i = 0; i < 18; i++)
            img[i] = 1.0f, w[i] = i < 9 ? 1.0f : 0.0f;
        ctsr_layer l = {w, &b, 1, 2, 3};
        ctsr_ref_conv3x3(img, 3, 3, &l, out);
        const float want[9] = {4, 6, 4, 6, 9, 6, 4, 6, 4};
        int ok = 1;
        for (int i = 0; i < 9; i++)
            ok &= out[i] == want[i] + 0.5f;
        TU_EXPECT(ok, "conv3x3 padding");
    }
}

int main(void)
{
    printf("reference operators\n");
    test_small_ops();
    test_window_attn(10, 13, 8, 2, 4, 1);  /* window divides neither side */
    test_window_attn(7, 5, 12, 3, 8, 2);   /* window larger than the image */
    test_window_attn(9, 9, 16, 1, 3, 3);   /* divides */
    test_window_attn(6, 11, 8, 2, 1, 4);   /* window 1: output = v */
    printf("golden vectors (tolerance %.0e)\n", TOL);
    const char *sets[] = {"small", "default", "x4", "tiny"};
    for (int i = 0; i < 4; i++)
        golden_set(sets[i]);
    return tu_finish("golden-reference", tu_passed);
}
