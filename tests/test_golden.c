/* golden-vulkan: the Vulkan engine reproduces the PyTorch student (training/ctsr/golden.py)
 * within 1e-4 in fp32, untiled and tiled, for every golden set and timestep; the RGBA8 path
 * equals the float path after 8-bit rounding. Fails (never skips) without a Vulkan device. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctsr.h"
#include "internal.h" /* host memory: the context's buffers */
#include "util.h"

static const char *sets[] = {"small", "default", "x4", "tiny"};

static int run_set(ctsr_context *ctx, const char *name)
{
    char path[64], err[512];
    int passed = 0;
    tu_golden g;
    snprintf(path, sizeof path, "golden_%s.bin", name);
    if (tu_golden_load(tu_data_path(path), &g)) {
        TU_CHECK(0, "cannot read %s", tu_data_path(path));
        return 0;
    }
    snprintf(path, sizeof path, "golden_%s.safetensors", name);
    int r = ctsr_load_model_file(ctx, tu_data_path(path), err, sizeof err);
    TU_CHECK(r == 0, "load %s: %s", path, err);
    if (r) {
        tu_golden_free(&g);
        return 0;
    }
    TU_CHECK(ctsr_scale(ctx) == g.scale, "scale %d != %d", ctsr_scale(ctx), g.scale);
    const size_t nout = (size_t)g.h * g.w * 3 * g.scale * g.scale;
    float *out = malloc(nout * sizeof *out);
    /* tile sizes: untiled, then the smallest tile (one window: many tiles, every edge case) */
    const int tiles[2] = {0, 1};
    for (int ti = 0; ti < 2; ti++) {
        ctsr_set_tile_size(ctx, tiles[ti] ? tiles[ti] : 100000, err, sizeof err);
        int T = ctsr_effective_tile_size(ctx, g.w, g.h);
        for (int k = 0; k < g.n_t; k++) {
            ctsr_set_timestep(ctx, g.t[k]);
            r = ctsr_process_rgb_f32(ctx, g.input, g.w, g.h, out, err, sizeof err);
            TU_CHECK(r == 0, "process: %s", err);
            float d = tu_max_abs_diff(out, g.output + k * nout, nout);
            printf("%-8s t=%.2f tile=%-6d max|vulkan-torch| = %.3g\n", name, g.t[k], T, d);
            TU_CHECK(d <= 1e-4f, "%s t=%g tile %d: max diff %g > 1e-4", name, g.t[k], T, d);
            passed += r == 0 && d <= 1e-4f;
        }
    }
    /* RGBA8 path: same network on 8-bit input; compare to the float path on the same input */
    {
        const int w = g.w, h = g.h, s = g.scale;
        uint8_t *in8 = malloc((size_t)w * h * 4 + 7), *out8 = malloc(nout / 3 * 4 + 4 * s * h);
        float *inf = malloc((size_t)w * h * 3 * sizeof *inf);
        for (int i = 0; i < w * h; i++) {
            for (int c = 0; c < 3; c++) {
                in8[i * 4 + c] = (uint8_t)lrintf(g.input[i * 3 + c] * 255.0f);
                inf[i * 3 + c] = in8[i * 4 + c] / 255.0f;
            }
            in8[i * 4 + 3] = 255;
        }
        ctsr_set_tile_size(ctx, 0, err, sizeof err);
        ctsr_set_timestep(ctx, 0.37f);
        r = ctsr_process_rgb_f32(ctx, inf, w, h, out, err, sizeof err);
        /* odd output stride: rows padded by 4 bytes */
        size_t ostride = (size_t)w * s * 4 + 4;
        uint8_t *out8s = malloc(ostride * h * s);
        r |= ctsr_process_rgba8(ctx, in8, w, h, (size_t)w * 4, out8s, ostride, err, sizeof err);
        TU_CHECK(r == 0, "rgba8: %s", err);
        int maxd = 0, alpha_ok = 1;
        for (int y = 0; y < h * s; y++)
            for (int x = 0; x < w * s; x++) {
                for (int c = 0; c < 3; c++) {
                    int ref = (int)lrintf(out[((size_t)y * w * s + x) * 3 + c] * 255.0f);
                    int d = abs(ref - out8s[y * ostride + x * 4 + c]);
                    maxd = d > maxd ? d : maxd;
                }
                alpha_ok &= out8s[y * ostride + x * 4 + 3] == 255;
            }
        printf("%-8s rgba8 vs float path: max diff %d levels, alpha %s\n", name, maxd,
               alpha_ok ? "255" : "WRONG");
        TU_CHECK(maxd <= 1 && alpha_ok, "%s rgba8 path differs by %d levels", name, maxd);
        passed += maxd <= 1 && alpha_ok;
        free(in8);
        free(out8);
        free(out8s);
        free(inf);
    }
    free(out);
    tu_golden_free(&g);
    return passed;
}

/* Tiled and untiled agree on a frame much larger than the overlap (many real tiles). */
static int tiled_vs_untiled(ctsr_context *ctx)
{
    char err[512];
    const int w = 157, h = 93;
    int r = ctsr_load_model_file(ctx, tu_data_path("golden_default.safetensors"), err, sizeof err);
    TU_CHECK(r == 0, "load: %s", err);
    if (r)
        return 0;
    const int s = ctsr_scale(ctx);
    const size_t nout = (size_t)w * h * 3 * s * s;
    float *in = malloc((size_t)w * h * 3 * sizeof *in), *a = malloc(nout * 4), *b = malloc(nout * 4);
    uint32_t seed = 7;
    tu_rand_fill(in, (size_t)w * h * 3, 0.0f, 1.0f, &seed);
    ctsr_set_timestep(ctx, 0.8f);
    ctsr_set_tile_size(ctx, 100000, err, sizeof err);
    r = ctsr_process_rgb_f32(ctx, in, w, h, a, err, sizeof err);
    int passed = 0;
    const int tiles[] = {8, 24, 40};
    for (int i = 0; i < 3; i++) {
        ctsr_set_tile_size(ctx, tiles[i], err, sizeof err);
        r |= ctsr_process_rgb_f32(ctx, in, w, h, b, err, sizeof err);
        float d = tu_max_abs_diff(a, b, nout);
        printf("tiled (%d px tiles, overlap %d) vs untiled on %dx%d: max diff %.3g\n",
               ctsr_effective_tile_size(ctx, w, h), ctsr_tile_overlap(ctx), w, h, d);
        TU_CHECK(r == 0 && d <= 1e-5f, "tile %d: %s diff %g", tiles[i], err, d);
        passed += r == 0 && d <= 1e-5f;
    }
    free(in);
    free(a);
    free(b);
    return passed;
}

/* Buffers of 2 MiB or more in host memory that libctsr maps itself (CPU devices with
 * VK_EXT_external_memory_host: vk.c's host_import, huge pages for the first frame's page faults)
 * compute the same frame, bit for bit, as Vulkan-allocated memory (CTSR_NO_HOST_MEMORY=1).
 * Lavapipe has the extension, so there the imported path is required. */
static int host_memory(void)
{
    char err[512];
    const int w = 157, h = 93;
    float *in = malloc((size_t)w * h * 3 * sizeof *in), *out[2] = {NULL, NULL};
    uint32_t seed = 11;
    tu_rand_fill(in, (size_t)w * h * 3, 0.0f, 1.0f, &seed);
    int passed = 0;
    for (int off = 0; off < 2; off++) {
        if (off)
            setenv("CTSR_NO_HOST_MEMORY", "1", 1);
        ctsr_context *ctx;
        int r = ctsr_context_create(&(ctsr_options){.device_index = -1,
                                                    .precision = CTSR_PRECISION_FP32},
                                    &ctx, err, sizeof err);
        unsetenv("CTSR_NO_HOST_MEMORY");
        TU_CHECK(r == 0, "context: %s", err);
        if (r)
            break;
        r = ctsr_load_model_file(ctx, tu_data_path("golden_default.safetensors"), err, sizeof err);
        ctsr_set_timestep(ctx, 0.6f);
        out[off] = malloc((size_t)w * h * 12 * sizeof(float));
        if (!r)
            r = ctsr_process_rgb_f32(ctx, in, w, h, out[off], err, sizeof err);
        TU_CHECK(r == 0, "host memory %s: %s", off ? "off" : "on", err);
        const ctsr_buffer *t1 = &ctx->buf[B_T1];
        const int lavapipe = strstr(ctsr_device_name(ctx), "llvmpipe") != NULL;
        const int imported = t1->host && (uintptr_t)t1->host % CTSR_VK_HUGE == 0 &&
                             t1->bytes % CTSR_VK_HUGE == 0 && t1->size >= CTSR_VK_HUGE &&
                             t1->map == t1->host;
        printf("host memory %s: %s, a %.1f MiB tile buffer %s\n", off ? "off" : "on",
               ctsr_device_name(ctx), t1->size / 1048576.0,
               imported ? "in imported 2 MiB-aligned host memory" : "in Vulkan-allocated memory");
        if (off)
            TU_CHECK(!r && !ctx->vk.host_import && !t1->host, "CTSR_NO_HOST_MEMORY not obeyed");
        else
            TU_CHECK(!r && (imported || (!lavapipe && !ctx->vk.host_import)),
                     "host memory not imported on %s", ctsr_device_name(ctx));
        passed += r == 0;
        ctsr_context_destroy(ctx);
    }
    if (out[0] && out[1]) {
        const int same = !memcmp(out[0], out[1], (size_t)w * h * 12 * sizeof(float));
        printf("host memory vs Vulkan memory: %s\n", same ? "identical" : "DIFFERENT");
        TU_CHECK(same, "imported host memory changes the output");
        passed += same;
    }
    free(in);
    free(out[0]);
    free(out[1]);
    return passed;
}

/* fp16 activation storage (where the device has it) against the fp32 golden outputs.
 * Tolerance: 1e-2 absolute on [0,1] outputs (under 3 levels of 8 bits); measured ~1e-3. */
static int fp16_vs_golden(void)
{
    char err[512];
    ctsr_context *ctx;
    int passed = 0;
    if (ctsr_context_create(&(ctsr_options){.device_index = -1, .precision = CTSR_PRECISION_FP16},
                            &ctx, err, sizeof err)) {
        printf("fp16 storage not offered by this device (%s): fp16 path not tested\n", err);
        return 0;
    }
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        char path[64];
        tu_golden g;
        snprintf(path, sizeof path, "golden_%s.bin", sets[i]);
        if (tu_golden_load(tu_data_path(path), &g))
            continue;
        snprintf(path, sizeof path, "golden_%s.safetensors", sets[i]);
        int r = ctsr_load_model_file(ctx, tu_data_path(path), err, sizeof err);
        const size_t nout = (size_t)g.h * g.w * 3 * g.scale * g.scale;
        float *out = malloc(nout * sizeof *out);
        for (int k = 0; k < g.n_t && !r; k++) {
            ctsr_set_timestep(ctx, g.t[k]);
            r = ctsr_process_rgb_f32(ctx, g.input, g.w, g.h, out, err, sizeof err);
            float d = tu_max_abs_diff(out, g.output + k * nout, nout);
            printf("fp16 %-8s t=%.2f max|vulkan-torch| = %.3g\n", sets[i], g.t[k], d);
            TU_CHECK(r == 0 && d <= 1e-2f, "fp16 %s: %s diff %g", sets[i], err, d);
            passed += r == 0 && d <= 1e-2f;
        }
        TU_CHECK(r == 0, "fp16 %s: %s", sets[i], err);
        free(out);
        tu_golden_free(&g);
    }
    ctsr_context_destroy(ctx);
    return passed;
}

int main(void)
{
    char err[512];
    ctsr_context *ctx;
    int passed = 0;
    int r = ctsr_context_create(&(ctsr_options){.device_index = -1,
                                                .precision = CTSR_PRECISION_FP32},
                                &ctx, err, sizeof err);
    if (r) {
        fprintf(stderr, "no Vulkan context: %s\n", err);
        TU_CHECK(0, "a Vulkan device is required for this test");
        return tu_finish("golden-vulkan", 0);
    }
    printf("device: %s\n", ctsr_device_name(ctx));
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++)
        passed += run_set(ctx, sets[i]);
    passed += tiled_vs_untiled(ctx);
    ctsr_context_destroy(ctx);
    passed += fp16_vs_golden();
    passed += host_memory();
    return tu_finish("golden-vulkan", passed);
}
