/* ctsr-bench: libctsr on a Vulkan device against the same weights in PyTorch on the CPU, in
 * one run. Prints ms per frame and effective GFLOP/s (2 x MACs / time) of both, of the whole
 * network and of its convolutions alone, their ratios, and one closing JSON line.
 *
 *   ctsr-bench [--model FILE] [--width 640] [--height 360] [--frames 5] [--device N]
 *              [--tile N] [--fp16] [--no-torch] [--python /usr/bin/python3] [--roi] [--vary-t]
 *
 * --roi: the cost of a timestep map (ctsr_set_timestep_map, 3 regions at t = 0 on t = 1,
 * the default transition) against the uniform path, side by side: frames with uniform t and
 * frames with a map whose regions move every frame (so it is rasterised, set and prepared
 * each time: the worst case) take turns on one context; medians and fastest of wall time,
 * and each one's device time in one profiled frame (Vulkan timestamps).
 * --vary-t: the cost of a new timestep every frame, the same way: frames after setting t to
 * the value it has, and frames after setting a new one (issue 8: < 1% of the throughput).
 *
 * Device time per operator comes from Vulkan timestamps; frame time is wall clock including
 * the host copies in and out. With --width 1920 --height 1080 it also shows the device memory
 * held for a 1080p -> 4K frame. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctsr.h"

#ifndef CTSR_SOURCE_ROOT
#define CTSR_SOURCE_ROOT "."
#endif

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Reads the first number after "key": in a JSON line; NAN when absent. */
static double json_num(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* 3 face-sized regions at t = 0 on a t = 1 frame, moved right by `shift` pixels */
static int roi_map(const ctsr_context *ctx, float *map, int w, int h, int shift, char *err,
                   size_t errlen)
{
    const ctsr_timestep_region r[3] = {{w / 8 + shift, h / 6, w / 6, h / 4, 0.0f},
                                       {w / 2 + shift, h / 5, w / 7, h / 4, 0.0f},
                                       {w / 3 + shift, h / 2, w / 3, h / 8, 0.0f}};
    return ctsr_timestep_map_fill(map, w, h, (size_t)w * 4, 1.0f, r, 3,
                                  (float)ctsr_default_transition(ctx), err, errlen);
}

/* A comparison in turns on one context (one context: lavapipe runs each context's work on its
 * own threads, which the scheduler of a shared machine may favour): before every frame of
 * case k (0 or 1) setup(k, frame) prepares it, and the two cases alternate frame by frame,
 * each going first in turn, so that the machine's drift falls on both alike. */
typedef struct turns {
    const char *title, *names[2], *json_key, *json_names[2];
    /* prepares a frame of case k (f: frame number; f < 0: the untimed first frame and the
     * profiled ones) */
    int (*setup)(ctsr_context *c, const struct turns *tb, int k, int f, char *err, size_t errlen);
    float *map; /* --roi: the map buffer */
    int w, h;
} turns;

/* --roi: uniform t (case 0) and a map whose regions move every frame (case 1: rasterised, set
 * and prepared each time, the worst case) */
static int roi_setup(ctsr_context *c, const turns *tb, int k, int f, char *err, size_t errlen)
{
    if (k == 0)
        return ctsr_set_timestep_map(c, NULL, 0, 0, 0, err, errlen);
    return roi_map(c, tb->map, tb->w, tb->h, f < 0 ? 0 : f + 1, err, errlen) ||
           ctsr_set_timestep_map(c, tb->map, tb->w, tb->h, (size_t)tb->w * 4, err, errlen);
}

/* --vary-t: t set before every frame to the same value (case 0: the engine sees no change) or
 * to a new one (case 1: 0.37 f mod 1, the timestep MLP and FiLM vectors recomputed) */
static int vary_setup(ctsr_context *c, const turns *tb, int k, int f, char *err, size_t errlen)
{
    (void)tb, (void)err, (void)errlen;
    ctsr_set_timestep(c, k == 0 || f < 0 ? 0.5f : fmodf(0.37f * (float)f, 1.0f));
    return 0;
}

static int turns_bench(const ctsr_options *opts, const char *model, const uint8_t *in, int w,
                       int h, int frames, turns *tb)
{
    char err[1024] = "";
    ctsr_context *c = NULL;
    double *ms[2], med[2], lo[2], dev[2];
    int rc = 0, s = 0;
    uint8_t *out = NULL;
    tb->w = w;
    tb->h = h;
    for (int k = 0; k < 2; k++)
        ms[k] = calloc((size_t)frames, sizeof(double));
    rc = ctsr_context_create(opts, &c, err, sizeof err) ||
         ctsr_load_model_file(c, model, err, sizeof err);
    if (!rc) {
        ctsr_set_timestep(c, 1.0f);
        s = ctsr_scale(c);
        out = malloc((size_t)w * h * s * s * 4);
        rc = !out || !ms[0] || !ms[1] || tb->setup(c, tb, 1, -1, err, sizeof err);
        if (!out || !ms[0] || !ms[1])
            snprintf(err, sizeof err, "out of memory");
    }
    /* a first frame of case 1 (for --roi the map shader variant): not timed */
    rc = rc || ctsr_process_rgba8(c, in, w, h, (size_t)w * 4, out, (size_t)w * s * 4, err,
                                  sizeof err);
    for (int f = 0; f < frames && !rc; f++)
        for (int kk = 0; kk < 2 && !rc; kk++) {
            const int k = (f + kk) % 2; /* each goes first in turn */
            double a = now_ms();
            rc = tb->setup(c, tb, k, f, err, sizeof err) ||
                 ctsr_process_rgba8(c, in, w, h, (size_t)w * 4, out, (size_t)w * s * 4, err,
                                    sizeof err);
            ms[k][f] = now_ms() - a;
        }
    for (int k = 0; k < 2 && !rc; k++) {
        ctsr_profile p = {0};
        dev[k] = NAN;
        rc = tb->setup(c, tb, k, -1, err, sizeof err);
        if (!rc && !ctsr_set_profiling(c, 1, err, sizeof err)) {
            rc = ctsr_process_rgba8(c, in, w, h, (size_t)w * 4, out, (size_t)w * s * 4, err,
                                    sizeof err);
            ctsr_get_profile(c, &p);
            dev[k] = p.total_ms;
            ctsr_set_profiling(c, 0, err, sizeof err);
        }
        qsort(ms[k], (size_t)frames, sizeof(double), cmp_double);
        med[k] = ms[k][frames / 2];
        lo[k] = ms[k][0];
    }
    if (!rc) {
        printf("\n%s, %d frames each, in turns:\n", tb->title, frames);
        for (int k = 0; k < 2; k++)
            printf("  %-10s median %8.1f ms/frame (x%.3f of %s), fastest %8.1f ms "
                   "(x%.3f); one profiled frame: device %8.1f ms (x%.3f)\n", tb->names[k],
                   med[k], med[k] / med[0], tb->names[0], lo[k], lo[k] / lo[0], dev[k],
                   dev[k] / dev[0]);
        printf("{\"%s\": 1, \"width\": %d, \"height\": %d, \"%s_ms\": %.2f, \"%s_ms\": %.2f, "
               "\"%s_min_ms\": %.2f, \"%s_min_ms\": %.2f, \"%s_device_ms\": %.2f, "
               "\"%s_device_ms\": %.2f}\n", tb->json_key, w, h, tb->json_names[0], med[0],
               tb->json_names[1], med[1], tb->json_names[0], lo[0], tb->json_names[1], lo[1],
               tb->json_names[0], dev[0], tb->json_names[1], dev[1]);
    } else {
        fprintf(stderr, "ctsr-bench --%s: %s\n", tb->json_key, err);
    }
    ctsr_context_destroy(c);
    for (int k = 0; k < 2; k++)
        free(ms[k]);
    free(out);
    return rc ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: ctsr-bench [--model FILE] [--width W] [--height H] [--frames N] "
                    "[--device N] [--tile N] [--fp16] [--no-torch] [--python PATH] [--roi] "
                    "[--vary-t]\n");
}

int main(int argc, char **argv)
{
    const char *model = CTSR_SOURCE_ROOT "/models/ctsr-x2.safetensors";
    const char *python = "/usr/bin/python3";
    int w = 640, h = 360, frames = 5, device = -1, tile = 0, fp16 = 0, torch = 1, roi = 0;
    int vary = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--fp16"))
            fp16 = 1;
        else if (!strcmp(a, "--no-torch"))
            torch = 0;
        else if (!strcmp(a, "--roi"))
            roi = 1;
        else if (!strcmp(a, "--vary-t"))
            vary = 1;
        else if (v && !strcmp(a, "--model"))
            model = v, i++;
        else if (v && !strcmp(a, "--python"))
            python = v, i++;
        else if (v && !strcmp(a, "--width"))
            w = atoi(v), i++;
        else if (v && !strcmp(a, "--height"))
            h = atoi(v), i++;
        else if (v && !strcmp(a, "--frames"))
            frames = atoi(v), i++;
        else if (v && !strcmp(a, "--device"))
            device = atoi(v), i++;
        else if (v && !strcmp(a, "--tile"))
            tile = atoi(v), i++;
        else {
            usage();
            return 2;
        }
    }
    if (w <= 0 || h <= 0 || frames <= 0 || frames > 1000) {
        usage();
        return 2;
    }

    char err[1024];
    ctsr_context *ctx;
    ctsr_options opts = {.device_index = device,
                         .tile_size = tile,
                         .precision = fp16 ? CTSR_PRECISION_FP16 : CTSR_PRECISION_FP32};
    if (ctsr_context_create(&opts, &ctx, err, sizeof err)) {
        fprintf(stderr, "ctsr-bench: %s\n", err);
        return 1;
    }
    double t0 = now_ms();
    if (ctsr_load_model_file(ctx, model, err, sizeof err)) {
        fprintf(stderr, "ctsr-bench: %s\n", err);
        ctsr_context_destroy(ctx);
        return 1;
    }
    const double load_ms = now_ms() - t0;
    const int s = ctsr_scale(ctx);
    const double macs = ctsr_model_macs_per_pixel(ctx);
    uint8_t *in = malloc((size_t)w * h * 4), *out = malloc((size_t)w * h * s * s * 4);
    double *ms = calloc((size_t)frames, sizeof *ms);
    if (!in || !out || !ms) {
        fprintf(stderr, "ctsr-bench: out of memory\n");
        return 1;
    }
    uint32_t st = 1;
    for (size_t i = 0; i < (size_t)w * h * 4; i++) {
        st = st * 1664525u + 1013904223u;
        in[i] = (uint8_t)(st >> 24);
    }
    printf("device: %s\nmodel: %s\n  %.0f MACs per input pixel, x%d\nframe: %dx%d -> %dx%d, "
           "tile %d (overlap %d), %s\nmodel load + pipelines + warm-up: %.0f ms\n",
           ctsr_device_name(ctx), model, macs, s, w, h, w * s, h * s,
           ctsr_effective_tile_size(ctx, w, h), ctsr_tile_overlap(ctx), fp16 ? "fp16" : "fp32",
           load_ms);
    fflush(stdout);

    int rc = 0;
    /* the first frame at this size allocates the tile buffers, whose memory its dispatches
     * touch first (page faults on CPU devices): timed on its own, not in the median */
    double first_ms = now_ms();
    rc |= ctsr_process_rgba8(ctx, in, w, h, (size_t)w * 4, out, (size_t)w * s * 4, err, sizeof err);
    first_ms = now_ms() - first_ms;
    for (int f = 0; f < frames && !rc; f++) {
        ctsr_set_timestep(ctx, (float)f / (float)frames);
        double a = now_ms();
        rc |= ctsr_process_rgba8(ctx, in, w, h, (size_t)w * 4, out, (size_t)w * s * 4, err,
                                 sizeof err);
        ms[f] = now_ms() - a;
    }
    ctsr_profile prof = {0};
    int have_prof = !rc && !ctsr_set_profiling(ctx, 1, err, sizeof err);
    if (have_prof) {
        rc |= ctsr_process_rgba8(ctx, in, w, h, (size_t)w * 4, out, (size_t)w * s * 4, err,
                                 sizeof err);
        ctsr_get_profile(ctx, &prof);
    }
    if (rc) {
        fprintf(stderr, "ctsr-bench: %s\n", err);
        return 1;
    }
    qsort(ms, (size_t)frames, sizeof *ms, cmp_double);
    const double vk_ms = ms[frames / 2];
    const double px = (double)w * h;
    const double vk_gflops = 2.0 * macs * px / (vk_ms * 1e6);
    const size_t mem = ctsr_device_memory(ctx);
    printf("\nVulkan (%s): %.1f ms/frame (median of %d), %.1f GFLOP/s effective, device memory "
           "%.1f MiB\n", ctsr_device_name(ctx), vk_ms, frames, vk_gflops, mem / 1048576.0);
    printf("  first frame after the load: %.1f ms (%.2fx the median)\n", first_ms,
           first_ms / vk_ms);
    double conv_useful_macs = NAN, vk_conv_gflops = NAN;
    if (have_prof) {
        printf("  device time %.1f ms over %d tile(s): conv %.1f, attention %.1f, layernorm %.1f, "
               "in/out %.1f ms\n", prof.total_ms, prof.tiles, prof.conv_ms, prof.attn_ms,
               prof.norm_ms, prof.io_ms);
        printf("  convolutions: %.1f GFLOP/s on the work done (tile overlap included)\n",
               2.0 * prof.conv_macs / (prof.conv_ms * 1e6));
    }

    if (roi && !rc) {
        float *map = malloc((size_t)w * h * sizeof *map);
        turns tb = {"timestep map (--roi)", {"uniform t", "map"}, "roi", {"uniform", "map"},
                    roi_setup, map, 0, 0};
        rc = map ? turns_bench(&opts, model, in, w, h, frames, &tb) : 1;
        free(map);
    }
    if (vary && !rc) {
        turns tb = {"timestep changed every frame (--vary-t)", {"same t", "new t"}, "vary_t",
                    {"same_t", "new_t"}, vary_setup, NULL, 0, 0};
        rc = turns_bench(&opts, model, in, w, h, frames, &tb);
        /* the host's part of a new t alone: the timestep MLP, the FiLM vectors, their copy */
        const double a = now_ms();
        for (int i = 0; i < 1000; i++)
            ctsr_set_timestep(ctx, (float)i / 1000.0f);
        printf("  ctsr_set_timestep: %.1f us a call (mean of 1000)\n", (now_ms() - a));
    }

    double t_ms = NAN, t_conv_ms = NAN, t_gflops = NAN, t_conv_gflops = NAN;
    if (torch && !rc) {
        char cmd[4096], line[4096] = "";
        snprintf(cmd, sizeof cmd,
                 "'%s' '%s/bench/torch_bench.py' --model '%s' --width %d --height %d --iters %d",
                 python, CTSR_SOURCE_ROOT, model, w, h, frames);
        FILE *p = popen(cmd, "r");
        if (p) {
            char buf[4096];
            while (fgets(buf, sizeof buf, p))
                if (buf[0] == '{')
                    snprintf(line, sizeof line, "%s", buf);
            pclose(p);
        }
        t_ms = json_num(line, "ms");
        t_conv_ms = json_num(line, "conv_ms");
        conv_useful_macs = json_num(line, "conv_macs_per_px");
        if (isnan(t_ms)) {
            fprintf(stderr, "ctsr-bench: the PyTorch side did not run (%s)\n", cmd);
            rc = 1;
        } else {
            t_gflops = 2.0 * macs * px / (t_ms * 1e6);
            t_conv_gflops = 2.0 * conv_useful_macs * px / (t_conv_ms * 1e6);
            printf("PyTorch (CPU, 2 threads, channels_last): %.1f ms/frame, %.1f GFLOP/s; "
                   "convolutions %.1f ms, %.1f GFLOP/s\n", t_ms, t_gflops, t_conv_ms,
                   t_conv_gflops);
        }
    }
    if (have_prof && !isnan(conv_useful_macs))
        vk_conv_gflops = 2.0 * conv_useful_macs * px / (prof.conv_ms * 1e6);
    const double ratio = vk_gflops / t_gflops, conv_ratio = vk_conv_gflops / t_conv_gflops;
    if (torch && !rc)
        printf("ratio Vulkan/PyTorch: whole network %.3f, convolutions %.3f (%.1f vs %.1f "
               "GFLOP/s on the frame's own MACs)\n", ratio, conv_ratio, vk_conv_gflops,
               t_conv_gflops);
    printf("{\"device\": \"%s\", \"width\": %d, \"height\": %d, \"scale\": %d, "
           "\"precision\": \"%s\", \"tile\": %d, \"macs_per_px\": %.0f, \"vk_ms\": %.2f, "
           "\"vk_min_ms\": %.2f, \"vk_first_ms\": %.2f, "
           "\"vk_gflops\": %.2f, \"vk_conv_ms\": %.2f, \"vk_conv_gflops\": %.2f, "
           "\"torch_ms\": %.2f, \"torch_gflops\": %.2f, \"torch_conv_ms\": %.2f, "
           "\"torch_conv_gflops\": %.2f, \"ratio\": %.4f, \"conv_ratio\": %.4f, "
           "\"device_memory_mib\": %.1f}\n",
           ctsr_device_name(ctx), w, h, s, fp16 ? "fp16" : "fp32",
           ctsr_effective_tile_size(ctx, w, h), macs, vk_ms, ms[0], first_ms, vk_gflops,
           have_prof ? prof.conv_ms : -1.0, isnan(vk_conv_gflops) ? -1.0 : vk_conv_gflops,
           isnan(t_ms) ? -1.0 : t_ms, isnan(t_gflops) ? -1.0 : t_gflops,
           isnan(t_conv_ms) ? -1.0 : t_conv_ms, isnan(t_conv_gflops) ? -1.0 : t_conv_gflops,
           isnan(ratio) ? -1.0 : ratio, isnan(conv_ratio) ? -1.0 : conv_ratio, mem / 1048576.0);
    free(in);
    free(out);
    free(ms);
    ctsr_context_destroy(ctx);
    return rc;
}
