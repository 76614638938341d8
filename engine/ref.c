/* libctsr: plain C reference of every operator of the student network (NHWC float).
 * Straightforward loops that follow training/ctsr/student.py; the Vulkan shaders are
 * tested against these, and these against the PyTorch golden vectors. */
#include "model.h"

#include "ctsr.h"
#include "tmap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ctsr_ref_conv3x3(const float *in, int h, int w, const ctsr_layer *l, float *out)
{
    const int cin = l->cin, cout = l->cout;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            float *o = out + ((size_t)y * w + x) * cout;
            for (int co = 0; co < cout; co++) {
                float acc = l->b ? l->b[co] : 0.0f;
                for (int ky = 0; ky < 3; ky++) {
                    int sy = y + ky - 1;
                    if (sy < 0 || sy >= h)
                        continue; /* zero padding */
                    for (int kx = 0; kx < 3; kx++) {
                        int sx = x + kx - 1;
                        if (sx < 0 || sx >= w)
                            continue;
                        const float *px = in + ((size_t)sy * w + sx) * cin;
                        const float *wk = l->w + (size_t)co * cin * 9 + ky * 3 + kx;
                        for (int ci = 0; ci < cin; ci++)
                            acc += wk[(size_t)ci * 9] * px[ci];
                    }
                }
                o[co] = acc;
            }
        }
    }
}

void ctsr_ref_conv1x1(const float *in, int h, int w, const ctsr_layer *l, float *out)
{
    const int cin = l->cin, cout = l->cout;
    const size_t n = (size_t)h * w;
    for (size_t p = 0; p < n; p++) {
        const float *px = in + p * cin;
        float *o = out + p * cout;
        for (int co = 0; co < cout; co++) {
            const float *wr = l->w + (size_t)co * cin;
            float acc = l->b ? l->b[co] : 0.0f;
            for (int ci = 0; ci < cin; ci++)
                acc += wr[ci] * px[ci];
            o[co] = acc;
        }
    }
}

void ctsr_ref_act(float *x, size_t n, int act)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        switch (act) {
        case CTSR_ACT_RELU:
            v = v > 0.0f ? v : 0.0f;
            break;
        case CTSR_ACT_LRELU:
            v = v > 0.0f ? v : v * CTSR_LRELU_SLOPE;
            break;
        case CTSR_ACT_SILU:
            v = v / (1.0f + expf(-v));
            break;
        case CTSR_ACT_GELU: /* tanh approximation */
            v = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
            break;
        default:
            break;
        }
        x[i] = v;
    }
}

void ctsr_ref_layernorm(const float *in, int h, int w, int c, const float *g, const float *b,
                        float *out)
{
    const size_t n = (size_t)h * w;
    for (size_t p = 0; p < n; p++) {
        const float *px = in + p * c;
        float *o = out + p * c;
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < c; i++)
            mean += px[i];
        mean /= c;
        for (int i = 0; i < c; i++) {
            double d = px[i] - mean;
            var += d * d;
        }
        var /= c; /* biased */
        double rstd = 1.0 / sqrt(var + (double)CTSR_LN_EPS);
        for (int i = 0; i < c; i++)
            o[i] = (float)((px[i] - mean) * rstd) * g[i] + b[i];
    }
}

void ctsr_ref_window_attn(const float *qkv, int h, int w, int c, int heads, int win,
                          float *out)
{
    const int d = c / heads, c3 = 3 * c;
    const float scale = 1.0f / sqrtf((float)d);
    float stack_p[16 * 16];
    float *p = win <= 16 ? stack_p : malloc((size_t)win * win * sizeof *p);
    if (!p)
        return;
    for (int y = 0; y < h; y++) {
        /* the pixel's cell, clipped to the image (cells at the right/bottom edge shrink) */
        int y0 = y / win * win, y1 = y0 + win < h ? y0 + win : h;
        for (int x = 0; x < w; x++) {
            int x0 = x / win * win, x1 = x0 + win < w ? x0 + win : w;
            const float *q = qkv + ((size_t)y * w + x) * c3;
            float *o = out + ((size_t)y * w + x) * c;
            for (int hd = 0; hd < heads; hd++) {
                const int off = hd * d;
                float mx = -INFINITY;
                int n = 0;
                for (int ky = y0; ky < y1; ky++)
                    for (int kx = x0; kx < x1; kx++) {
                        const float *k = qkv + ((size_t)ky * w + kx) * c3 + c;
                        float s = 0.0f;
                        for (int i = 0; i < d; i++)
                            s += q[off + i] * k[off + i];
                        s *= scale;
                        p[n++] = s;
                        if (s > mx)
                            mx = s;
                    }
                float sum = 0.0f;
                for (int i = 0; i < n; i++) {
                    p[i] = expf(p[i] - mx);
                    sum += p[i];
                }
                for (int i = 0; i < d; i++)
                    o[off + i] = 0.0f;
                n = 0;
                for (int ky = y0; ky < y1; ky++)
                    for (int kx = x0; kx < x1; kx++) {
                        const float *v = qkv + ((size_t)ky * w + kx) * c3 + 2 * c;
                        float a = p[n++] / sum;
                        for (int i = 0; i < d; i++)
                            o[off + i] += a * v[off + i];
                    }
            }
        }
    }
    if (p != stack_p)
        free(p);
}

/* Source taps of output coordinate o for a bilinear upsample by 1/inv over n input samples
 * (align_corners = False; negative source coordinates clamp to 0). */
static void bilinear_src(int o, float inv, int n, int *i0, int *i1, float *frac)
{
    float src = inv * ((float)o + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    *i0 = (int)src;
    *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
    *frac = src - (float)*i0;
}

void ctsr_ref_shuffle_residual(const float *tail, const float *img, int h, int w, int s,
                               float *out)
{
    const int oh = h * s, ow = w * s, ct = 3 * s * s;
    /* F.interpolate(scale_factor=s, bilinear, align_corners=False): the source coordinate
     * uses 1/s as the scale */
    const float inv = (float)(1.0 / s);
    for (int oy = 0; oy < oh; oy++) {
        int y0, y1;
        float ly1;
        bilinear_src(oy, inv, h, &y0, &y1, &ly1);
        float ly0 = 1.0f - ly1;
        for (int ox = 0; ox < ow; ox++) {
            int x0, x1;
            float lx1;
            bilinear_src(ox, inv, w, &x0, &x1, &lx1);
            float lx0 = 1.0f - lx1;
            /* pixel shuffle: out[c][y*s+i][x*s+j] = tail[c*s*s + i*s + j][y][x] */
            int y = oy / s, i = oy % s, x = ox / s, j = ox % s;
            const float *tp = tail + ((size_t)y * w + x) * ct;
            for (int c = 0; c < 3; c++) {
                float up = ly0 * (lx0 * img[((size_t)y0 * w + x0) * 3 + c] +
                                  lx1 * img[((size_t)y0 * w + x1) * 3 + c]) +
                           ly1 * (lx0 * img[((size_t)y1 * w + x0) * 3 + c] +
                                  lx1 * img[((size_t)y1 * w + x1) * 3 + c]);
                float v = tp[c * s * s + i * s + j] + up;
                v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
                out[((size_t)oy * ow + ox) * 3 + c] = v;
            }
        }
    }
}

/* the shader's FiLM lookup of a timestep map (tmap.h) */
float ctsr_ref_film_lookup(const float *table, int stride, float u, int off)
{
    const int l = (int)u;
    const float f = u - (float)l, a = table[(size_t)l * stride + off];
    if (f > 0.0f) {
        const float b = table[(size_t)(l + 1) * stride + off];
        return a + f * (b - a);
    }
    return a;
}

/* The per-pixel FiLM vectors of a timestep map (F floats a pixel, ctsr_model_film's layout)
 * as the shader computes them: the level at or below the pixel's t (a linear scan), blended
 * towards the next. 0, or CTSR_E_NOMEM. */
static int film_per_pixel(const ctsr_model *m, const float *tmap, size_t np,
                          const float *levels, int nlevels, float *film)
{
    const size_t F = (size_t)m->cfg.blocks * 2 * m->cfg.channels;
    float *lf = malloc((size_t)nlevels * F * sizeof *lf);
    if (!lf)
        return CTSR_E_NOMEM;
    for (int k = 0; k < nlevels; k++)
        ctsr_model_film(m, levels[k], lf + (size_t)k * F);
    for (size_t p = 0; p < np; p++) {
        int k = 0;
        while (k + 1 < nlevels && levels[k + 1] <= tmap[p])
            k++;
        const float *a = lf + (size_t)k * F;
        if (tmap[p] == levels[k] || k + 1 == nlevels || tmap[p] < levels[k]) {
            memcpy(film + p * F, a, F * sizeof *film);
            continue;
        }
        const float *b = a + F;
        const double f = ((double)tmap[p] - levels[k]) / ((double)levels[k + 1] - levels[k]);
        for (size_t i = 0; i < F; i++)
            film[p * F + i] = (float)(a[i] + f * ((double)b[i] - a[i]));
    }
    free(lf);
    return 0;
}

/* The attention and MLP halves of an attention block on the residual stream x (t1, t2:
 * scratch of the widest tensor) */
static void attention_block(const ctsr_config *cfg, const ctsr_block *b, int h, int w, float *x,
                            float *t1, float *t2)
{
    const int C = cfg->channels;
    const size_t np = (size_t)h * w;
    /* x = x + proj(wattn(qkv(ln1(x)))) */
    ctsr_ref_layernorm(x, h, w, C, b->ln1_w, b->ln1_b, t2);
    ctsr_ref_conv1x1(t2, h, w, &b->qkv, t1);
    ctsr_ref_window_attn(t1, h, w, C, cfg->heads, cfg->window, t2);
    ctsr_ref_conv1x1(t2, h, w, &b->proj, t1);
    for (size_t i = 0; i < np * C; i++)
        x[i] += t1[i];
    /* x = x + mlp2(gelu(mlp1(ln2(x)))) */
    ctsr_ref_layernorm(x, h, w, C, b->ln2_w, b->ln2_b, t2);
    ctsr_ref_conv1x1(t2, h, w, &b->mlp1, t1);
    ctsr_ref_act(t1, np * cfg->mlp_ratio * C, CTSR_ACT_GELU);
    ctsr_ref_conv1x1(t1, h, w, &b->mlp2, t2);
    for (size_t i = 0; i < np * C; i++)
        x[i] += t2[i];
}

/* The network with FiLM vectors per pixel (tmap, one t per pixel) or for the whole image
 * (tmap NULL: t). */
static int forward(const ctsr_model *m, float t, const float *tmap, const float *levels,
                   int nlevels, const float *img, int h, int w, float *out)
{
    const ctsr_config *cfg = &m->cfg;
    const int C = cfg->channels, s = cfg->scale, hC = cfg->mlp_ratio * C;
    if (h <= 0 || w <= 0 || (size_t)h > SIZE_MAX / (size_t)w)
        return CTSR_E_INVALID;
    const size_t np = (size_t)h * w;
    int widest = 3 * C;
    if (hC > widest)
        widest = hC;
    if (3 * s * s > widest)
        widest = 3 * s * s;
    if (np > SIZE_MAX / sizeof(float) / (size_t)widest)
        return CTSR_E_NOMEM;

    /* FiLM vectors: one set (uniform t) or one per pixel */
    const size_t F = (size_t)cfg->blocks * 2 * C, nf = tmap ? np : 1;
    if (nf > SIZE_MAX / sizeof(float) / F)
        return CTSR_E_NOMEM;
    float *film = malloc(nf * F * sizeof *film);
    float *x = malloc(np * C * sizeof *x);
    float *t1 = malloc(np * widest * sizeof *t1);
    float *t2 = malloc(np * widest * sizeof *t2);
    if (!film || !x || !t1 || !t2) {
        free(film), free(x), free(t1), free(t2);
        return CTSR_E_NOMEM;
    }
    if (!tmap)
        ctsr_model_film(m, t, film);
    else if (film_per_pixel(m, tmap, np, levels, nlevels, film)) {
        free(film), free(x), free(t1), free(t2);
        return CTSR_E_NOMEM;
    }
    int finite = 1;
    for (size_t i = 0; i < nf * F; i++)
        finite &= isfinite(film[i]) != 0;

    ctsr_ref_conv3x3(img, h, w, &m->head, x);
    for (int bi = 0; bi < cfg->blocks; bi++) {
        const ctsr_block *b = &m->blocks[bi];
        ctsr_ref_conv3x3(x, h, w, &b->conv1, t1);
        ctsr_ref_act(t1, np * C, cfg->act);
        ctsr_ref_conv3x3(t1, h, w, &b->conv2, t2);
        for (size_t p = 0; p < np; p++) {
            const float *g = film + (tmap ? p * F : 0) + (size_t)bi * 2 * C, *be = g + C;
            for (int c = 0; c < C; c++)
                x[p * C + c] = x[p * C + c] + t2[p * C + c] * (1.0f + g[c]) + be[c];
        }
        if (b->has_attn)
            attention_block(cfg, b, h, w, x, t1, t2);
    }
    ctsr_ref_conv3x3(x, h, w, &m->tail, t1);
    for (size_t i = 0; i < np * 3 * s * s; i++)
        finite &= isfinite(t1[i]) != 0;
    ctsr_ref_shuffle_residual(t1, img, h, w, s, out);
    free(film), free(x), free(t1), free(t2);
    return finite ? 0 : CTSR_E_FORMAT;
}

int ctsr_ref_forward(const ctsr_model *m, float t, const float *img, int h, int w, float *out)
{
    return forward(m, t, NULL, NULL, 0, img, h, w, out);
}

int ctsr_ref_forward_tmap(const ctsr_model *m, const float *tmap, const float *levels,
                          int nlevels, const float *img, int h, int w, float *out)
{
    if (nlevels < 1)
        return CTSR_E_INVALID;
    return forward(m, 0.0f, tmap, levels, nlevels, img, h, w, out);
}
