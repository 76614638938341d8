/* engine-yuv: I420 / NV12 conversion in the shaders (ctsr_process_yuv) against a plain C
 * reference in double precision composed with the float RGB path (ctsr_process_rgb_f32):
 * chroma upsampled bilinearly at its siting, the Kr/Kb matrix with limited or full range,
 * output chroma from the 2x2 average (centred) or 1-2-1 taps (cosited). Tolerance: every
 * code within 2 of the reference (float vs double rounding; measured: at most 1). Also: tiled
 * equals untiled, a scale-3 model (odd output sizes, odd tile edges), mixed colorimetry and
 * argument errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctsr.h"
#include "util.h"

#define TOL 2

static int n_pass;
#define EXPECT(cond, ...)                                                                      \
    do {                                                                                       \
        int ok_ = !!(cond);                                                                    \
        TU_CHECK(ok_, __VA_ARGS__);                                                            \
        n_pass += ok_;                                                                         \
    } while (0)

/* A frame with padded strides: planes[p] rows of strides[p] bytes. */
typedef struct yframe {
    int w, h, format;
    uint8_t *planes[3];
    size_t strides[3];
} yframe;

static void yf_alloc(yframe *f, int format, int w, int h, int pad)
{
    const int cw = (w + 1) / 2, ch = (h + 1) / 2;
    memset(f, 0, sizeof *f);
    f->w = w, f->h = h, f->format = format;
    f->strides[0] = (size_t)w + pad;
    f->planes[0] = calloc(f->strides[0] * h, 1);
    if (format == CTSR_YUV_I420) {
        for (int p = 1; p < 3; p++) {
            f->strides[p] = (size_t)cw + pad;
            f->planes[p] = calloc(f->strides[p] * ch, 1);
        }
    } else {
        f->strides[1] = (size_t)cw * 2 + pad;
        f->planes[1] = calloc(f->strides[1] * ch, 1);
    }
}

static void yf_free(yframe *f)
{
    for (int p = 0; p < 3; p++)
        free(f->planes[p]);
}

static uint8_t *luma(const yframe *f, int x, int y) { return f->planes[0] + y * f->strides[0] + x; }
/* c = 0: Cb, 1: Cr */
static uint8_t *chroma(const yframe *f, int c, int x, int y)
{
    if (f->format == CTSR_YUV_I420)
        return f->planes[1 + c] + y * f->strides[1 + c] + x;
    return f->planes[1] + y * f->strides[1] + 2 * x + c;
}

static void yf_random(yframe *f, uint32_t *seed)
{
    const int cw = (f->w + 1) / 2, ch = (f->h + 1) / 2;
#define RND() ((*seed = *seed * 1664525u + 1013904223u), (uint8_t)(*seed >> 24))
    for (int y = 0; y < f->h; y++)
        for (int x = 0; x < f->w; x++)
            *luma(f, x, y) = RND();
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++)
            for (int c = 0; c < 2; c++)
                *chroma(f, c, x, y) = RND();
#undef RND
}

/* ---- reference conversions (double) ---- */

/* chroma sample j at luma position 2j (cosited) or 2j + 1/2 (centred); clamped at the edges */
static void lerp_ref(int x, int cosited, int n, int *i0, int *i1, double *a)
{
    double pos = cosited ? x / 2.0 : (x - 0.5) / 2.0;
    if (pos < 0)
        pos = 0;
    *i0 = (int)floor(pos);
    *a = pos - *i0;
    if (*i0 >= n - 1) {
        *i0 = n - 1;
        *a = 0;
    }
    *i1 = *i0 + 1 < n ? *i0 + 1 : n - 1;
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

static void yuv_to_rgb_ref(const ctsr_yuv *m, const yframe *f, float *rgb)
{
    const int cw = (f->w + 1) / 2, ch = (f->h + 1) / 2;
    const double ys = m->full_range ? 255 : 219, yo = m->full_range ? 0 : 16;
    const double cs = m->full_range ? 255 : 224;
    for (int y = 0; y < f->h; y++)
        for (int x = 0; x < f->w; x++) {
            int c0, c1, r0, r1;
            double ax, ay, c[2];
            lerp_ref(x, m->chroma_cosited_h, cw, &c0, &c1, &ax);
            lerp_ref(y, m->chroma_cosited_v, ch, &r0, &r1, &ay);
            for (int k = 0; k < 2; k++)
                c[k] = ((1 - ay) * ((1 - ax) * *chroma(f, k, c0, r0) + ax * *chroma(f, k, c1, r0)) +
                        ay * ((1 - ax) * *chroma(f, k, c0, r1) + ax * *chroma(f, k, c1, r1)) -
                        128) / cs;
            const double Y = (*luma(f, x, y) - yo) / ys;
            const double r = Y + 2 * (1 - m->kr) * c[1], b = Y + 2 * (1 - m->kb) * c[0];
            const double g = (Y - m->kr * r - m->kb * b) / (1 - m->kr - m->kb);
            float *o = rgb + ((size_t)y * f->w + x) * 3;
            o[0] = (float)clamp01(r), o[1] = (float)clamp01(g), o[2] = (float)clamp01(b);
        }
}

static uint8_t code(double v)
{
    v = floor(v + 0.5);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static void rgb_to_yuv_ref(const ctsr_yuv *m, const float *rgb, yframe *f)
{
    const int W = f->w, H = f->h, cw = (W + 1) / 2, ch = (H + 1) / 2;
    const double ys = m->full_range ? 255 : 219, yo = m->full_range ? 0 : 16;
    const double cs = m->full_range ? 255 : 224, kg = 1 - m->kr - m->kb;
#define PX(x, y) (rgb + ((size_t)(y) * W + (x)) * 3)
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const float *p = PX(x, y);
            *luma(f, x, y) = code(yo + ys * (m->kr * p[0] + kg * p[1] + m->kb * p[2]));
        }
    for (int j = 0; j < ch; j++)
        for (int i = 0; i < cw; i++) {
            double s[3] = {0, 0, 0};
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    double wx = m->chroma_cosited_h ? (dx ? 0.25 : 0.5) : (dx >= 0 ? 0.5 : 0);
                    double wy = m->chroma_cosited_v ? (dy ? 0.25 : 0.5) : (dy >= 0 ? 0.5 : 0);
                    int x = 2 * i + dx, y = 2 * j + dy;
                    x = x < 0 ? 0 : x >= W ? W - 1 : x;
                    y = y < 0 ? 0 : y >= H ? H - 1 : y;
                    for (int k = 0; k < 3; k++)
                        s[k] += wx * wy * PX(x, y)[k];
                }
            const double Y = m->kr * s[0] + kg * s[1] + m->kb * s[2];
            *chroma(f, 0, i, j) = code(128 + cs * (s[2] - Y) / (2 * (1 - m->kb)));
            *chroma(f, 1, i, j) = code(128 + cs * (s[0] - Y) / (2 * (1 - m->kr)));
        }
#undef PX
}

/* largest code difference over all planes; *mean gets the mean */
static int yf_diff(const yframe *a, const yframe *b, double *mean)
{
    const int cw = (a->w + 1) / 2, ch = (a->h + 1) / 2;
    int mx = 0;
    double sum = 0;
    size_t n = 0;
#define ACC(pa, pb)                                                                            \
    do {                                                                                       \
        int d = abs((int)*(pa) - (int)*(pb));                                                  \
        mx = d > mx ? d : mx;                                                                  \
        sum += d, n++;                                                                         \
    } while (0)
    for (int y = 0; y < a->h; y++)
        for (int x = 0; x < a->w; x++)
            ACC(luma(a, x, y), luma(b, x, y));
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++)
            for (int c = 0; c < 2; c++)
                ACC(chroma(a, c, x, y), chroma(b, c, x, y));
#undef ACC
    if (mean)
        *mean = sum / (double)n;
    return mx;
}

static double g_worst_mean;
static int g_worst_max;

/* One frame through ctsr_process_yuv and through the reference; returns the max difference. */
static int run_case(ctsr_context *ctx, const ctsr_yuv *mi, const ctsr_yuv *mo, int w, int h,
                    uint32_t seed, yframe *out_dev)
{
    char err[512] = "";
    const int S = ctsr_scale(ctx), W = w * S, H = h * S;
    yframe in, ref;
    yf_alloc(&in, mi->format, w, h, 3);
    yf_random(&in, &seed);
    yf_alloc(out_dev, mo->format, W, H, 5);
    yf_alloc(&ref, mo->format, W, H, 0);
    float *rgb = malloc(sizeof(float) * 3 * w * h), *rgb_out = malloc(sizeof(float) * 3 * W * H);
    yuv_to_rgb_ref(mi, &in, rgb);
    int r = ctsr_process_rgb_f32(ctx, rgb, w, h, rgb_out, err, sizeof err);
    EXPECT(r == 0, "rgb_f32: %s", err);
    rgb_to_yuv_ref(mo, rgb_out, &ref);
    r = ctsr_process_yuv(ctx, mi, (const uint8_t *const *)in.planes, in.strides, w, h, mo,
                         out_dev->planes, out_dev->strides, err, sizeof err);
    EXPECT(r == 0, "process_yuv %dx%d: %s", w, h, err);
    double mean;
    int mx = yf_diff(out_dev, &ref, &mean);
    if (mx > g_worst_max)
        g_worst_max = mx;
    if (mean > g_worst_mean)
        g_worst_mean = mean;
    free(rgb);
    free(rgb_out);
    yf_free(&in);
    yf_free(&ref);
    return mx;
}

static const char *fmt_name(int f) { return f == CTSR_YUV_I420 ? "I420" : "NV12"; }

static void matrix_cases(ctsr_context *ctx, const int sizes[][2], int nsizes)
{
    static const double k[2][2] = {{0.299, 0.114}, {0.2126, 0.0722}};
    static const int siting[3][2] = {{0, 0}, {1, 1}, {1, 0}};
    uint32_t seed = 11;
    for (int s = 0; s < nsizes; s++)
        for (int f = CTSR_YUV_I420; f <= CTSR_YUV_NV12; f++)
            for (int m = 0; m < 2; m++)
                for (int full = 0; full < 2; full++)
                    for (int si = 0; si < 3; si++) {
                        ctsr_yuv y = {f, k[m][0], k[m][1], full, siting[si][0], siting[si][1]};
                        yframe out;
                        int mx = run_case(ctx, &y, &y, sizes[s][0], sizes[s][1], seed++, &out);
                        EXPECT(mx <= TOL, "x%d %s %s %s siting %d,%d %dx%d: max diff %d > %d",
                               ctsr_scale(ctx), fmt_name(f), m ? "BT.709" : "BT.601",
                               full ? "full" : "limited", siting[si][0], siting[si][1],
                               sizes[s][0], sizes[s][1], mx, TOL);
                        yf_free(&out);
                    }
}

/* tile size t on w x h equals the untiled run (within 1 code: float rounding) */
static void tiled_case(ctsr_context *ctx, int t, int w, int h, int fmt)
{
    char err[512];
    const ctsr_yuv mi = {fmt, 0.2126, 0.0722, 0, 1, 0};
    const ctsr_yuv mo = {fmt, 0.299, 0.114, 1, 0, 1};
    yframe a, b;
    ctsr_set_tile_size(ctx, 0, err, sizeof err);
    int mx = run_case(ctx, &mi, &mo, w, h, 99, &a);
    EXPECT(mx <= TOL, "untiled x%d %dx%d: max diff %d", ctsr_scale(ctx), w, h, mx);
    ctsr_set_tile_size(ctx, t, err, sizeof err);
    const int T = ctsr_effective_tile_size(ctx, w, h);
    EXPECT(T < w && (T * ctsr_scale(ctx)) % 2 == 0, "tile %d -> %d: not tiled or odd", t, T);
    mx = run_case(ctx, &mi, &mo, w, h, 99, &b);
    EXPECT(mx <= TOL, "tiled x%d %dx%d: max diff %d", ctsr_scale(ctx), w, h, mx);
    mx = yf_diff(&a, &b, NULL);
    EXPECT(mx <= 1, "x%d %s tile %d (%d) on %dx%d differs from untiled by %d", ctsr_scale(ctx),
           fmt_name(fmt), t, T, w, h, mx);
    printf("x%d %s tile %d (effective %d) on %dx%d: max diff to untiled %d\n", ctsr_scale(ctx),
           fmt_name(fmt), t, T, w, h, mx);
    ctsr_set_tile_size(ctx, 0, err, sizeof err);
    yf_free(&a);
    yf_free(&b);
}

/* ---- a random scale-3 model with window 3 (odd tile edges), written as safetensors ---- */

typedef struct tens {
    char name[48];
    int rank, shape[4];
} tens;

static uint8_t *x3_model(size_t *size)
{
    enum { C = 8, M = 16, E = 8, S = 3 };
    const tens t[] = {
        {"temb.fc1.weight", 2, {M, E}}, {"temb.fc1.bias", 1, {M}},
        {"temb.fc2.weight", 2, {M, M}}, {"temb.fc2.bias", 1, {M}},
        {"head.weight", 4, {C, 3, 3, 3}}, {"head.bias", 1, {C}},
        {"tail.weight", 4, {3 * S * S, C, 3, 3}}, {"tail.bias", 1, {3 * S * S}},
        {"blocks.0.conv1.weight", 4, {C, C, 3, 3}}, {"blocks.0.conv1.bias", 1, {C}},
        {"blocks.0.conv2.weight", 4, {C, C, 3, 3}}, {"blocks.0.conv2.bias", 1, {C}},
        {"blocks.0.film.weight", 2, {2 * C, M}}, {"blocks.0.film.bias", 1, {2 * C}},
    };
    const int nt = (int)(sizeof t / sizeof *t);
    char *hdr = malloc(8192);
    size_t hl = (size_t)snprintf(
        hdr, 8192,
        "{\"__metadata__\": {\"format\": \"ctsr-student\", \"format_version\": \"1\", "
        "\"config\": \"{\\\"act\\\": \\\"lrelu\\\", \\\"attn_blocks\\\": [], \\\"blocks\\\": 1, "
        "\\\"channels\\\": %d, \\\"heads\\\": 2, \\\"mlp_ratio\\\": 2, \\\"scale\\\": %d, "
        "\\\"temb_dim\\\": %d, \\\"temb_hidden\\\": %d, \\\"temb_scale\\\": 100.0, "
        "\\\"window\\\": 3}\", \"provenance\": \"{\\\"name\\\": \\\"unit-test\\\"}\"}",
        C, S, E, M);
    size_t dl = 0, counts[32];
    for (int i = 0; i < nt; i++) {
        counts[i] = 1;
        for (int j = 0; j < t[i].rank; j++)
            counts[i] *= (size_t)t[i].shape[j];
        hl += (size_t)snprintf(hdr + hl, 8192 - hl, ", \"%s\": {\"dtype\": \"F32\", \"shape\": [",
                               t[i].name);
        for (int j = 0; j < t[i].rank; j++)
            hl += (size_t)snprintf(hdr + hl, 8192 - hl, "%s%d", j ? ", " : "", t[i].shape[j]);
        hl += (size_t)snprintf(hdr + hl, 8192 - hl, "], \"data_offsets\": [%zu, %zu]}", dl,
                               dl + counts[i] * 4);
        dl += counts[i] * 4;
    }
    hl += (size_t)snprintf(hdr + hl, 8192 - hl, "}");
    while (hl % 8)
        hdr[hl++] = ' ';
    *size = 8 + hl + dl;
    uint8_t *out = malloc(*size);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(out + 8, hdr, hl);
    uint32_t seed = 5;
    tu_rand_fill((float *)(void *)(out + 8 + hl), dl / 4, -0.15f, 0.15f, &seed); /* LE host */
    free(hdr);
    return out;
}

int main(void)
{
    char err[512] = "";
    ctsr_context *ctx = NULL;
    int r = ctsr_context_create(&(ctsr_options){.device_index = -1, .precision = CTSR_PRECISION_FP32},
                                &ctx, err, sizeof err);
    EXPECT(r == 0, "context: %s", err);
    if (r)
        return tu_finish("engine-yuv", n_pass);
    printf("device: %s, YUV in shaders: %d\n", ctsr_device_name(ctx), ctsr_supports_yuv(ctx));
    r = ctsr_load_model_file(ctx, tu_data_path("golden_small.safetensors"), err, sizeof err);
    EXPECT(r == 0, "load: %s", err);
    if (r || !ctsr_supports_yuv(ctx)) {
        uint8_t b[64] = {0};
        uint8_t *const p[3] = {b, b, b};
        const size_t st[3] = {8, 8, 8};
        const ctsr_yuv y = {CTSR_YUV_I420, 0.299, 0.114, 0, 0, 0};
        r = ctsr_process_yuv(ctx, &y, (const uint8_t *const *)p, st, 2, 2, &y, p, st, err,
                             sizeof err);
        EXPECT(r == CTSR_E_INVALID && strstr(err, "8-bit"), "no 8-bit storage: '%s'", err);
        ctsr_context_destroy(ctx);
        return tu_finish("engine-yuv", n_pass);
    }
    ctsr_set_timestep(ctx, 0.4f);

    static const int sizes[][2] = {{1, 1}, {7, 5}, {33, 17}};
    matrix_cases(ctx, sizes, 3);
    /* input and output colorimetry differ (tiled_case) */
    tiled_case(ctx, 8, 61, 37, CTSR_YUV_I420);
    tiled_case(ctx, 8, 61, 37, CTSR_YUV_NV12);

    /* argument errors */
    {
        uint8_t b[256] = {0};
        uint8_t *const p[3] = {b, b + 64, b + 128};
        const size_t st[3] = {8, 8, 8}, shortst[3] = {1, 8, 8};
        ctsr_yuv y = {CTSR_YUV_I420, 0.299, 0.114, 0, 0, 0}, bad = y;
        const uint8_t *const *ip = (const uint8_t *const *)p;
        r = ctsr_process_yuv(ctx, &y, ip, st, 2, 2, &y, p, st, err, sizeof err);
        EXPECT(r == 0, "2x2: %s", err);
        bad.format = 7;
        r = ctsr_process_yuv(ctx, &bad, ip, st, 2, 2, &y, p, st, err, sizeof err);
        EXPECT(r == CTSR_E_INVALID && strstr(err, "format"), "bad format: '%s'", err);
        bad = y, bad.kr = 0.9;
        r = ctsr_process_yuv(ctx, &y, ip, st, 2, 2, &bad, p, st, err, sizeof err);
        EXPECT(r == CTSR_E_INVALID && strstr(err, "kr"), "bad kr: '%s'", err);
        bad = y, bad.format = CTSR_YUV_NV12;
        r = ctsr_process_yuv(ctx, &y, ip, st, 2, 2, &bad, p, st, err, sizeof err);
        EXPECT(r == CTSR_E_INVALID, "mixed formats: '%s'", err);
        r = ctsr_process_yuv(ctx, &y, ip, shortst, 2, 2, &y, p, st, err, sizeof err);
        EXPECT(r == CTSR_E_INVALID && strstr(err, "stride"), "short stride: '%s'", err);
        uint8_t *const np[3] = {b, NULL, b};
        r = ctsr_process_yuv(ctx, &y, ip, st, 2, 2, &y, np, st, err, sizeof err);
        EXPECT(r == CTSR_E_INVALID && strstr(err, "NULL"), "NULL plane: '%s'", err);
        r = ctsr_process_yuv(ctx, &y, ip, st, 0, 2, &y, p, st, err, sizeof err);
        EXPECT(r == CTSR_E_INVALID, "zero width");
    }

    /* scale 3: odd output sizes; window 3 makes odd tile edges, which become even */
    size_t msize;
    uint8_t *model = x3_model(&msize);
    r = ctsr_load_model_memory(ctx, model, msize, err, sizeof err);
    free(model);
    EXPECT(r == 0 && ctsr_scale(ctx) == 3, "x3 model: %s", err);
    if (!r) {
        static const int sizes3[][2] = {{1, 1}, {7, 5}};
        matrix_cases(ctx, sizes3, 2);
        tiled_case(ctx, 3, 23, 13, CTSR_YUV_I420);
        tiled_case(ctx, 3, 23, 13, CTSR_YUV_NV12);
    }
    printf("all cases vs reference: max diff %d codes (tolerance %d), worst mean %.4f\n",
           g_worst_max, TOL, g_worst_mean);
    ctsr_context_destroy(ctx);
    return tu_finish("engine-yuv", n_pass);
}
