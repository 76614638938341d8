/* libctsr without GStreamer: upscale a generated RGBA frame with the installed default model
 * and print the sizes. Built against the installed library through pkg-config:
 *
 *   cc upscale-frame.c -o upscale-frame $(pkg-config --cflags --libs ctsr) \
 *       -DCTSR_DEFAULT_MODEL="\"$(pkg-config --variable=default_model ctsr)\""
 *   ./upscale-frame [model.safetensors] [timestep]
 *
 * Prints "64x48 -> 128x96 ..." with the device, the model's scale and the mean of each
 * channel of the input and the output (an upscaler keeps them within a few levels). */
#include <ctsr.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef CTSR_DEFAULT_MODEL
#error "define CTSR_DEFAULT_MODEL: -DCTSR_DEFAULT_MODEL=\"\\\"$(pkg-config --variable=default_model ctsr)\\\"\""
#endif

/* mean of each of R, G, B over a w x h RGBA frame */
static void channel_means(const uint8_t *px, int w, int h, double mean[3])
{
    double sum[3] = {0, 0, 0};
    for (long i = 0; i < (long)w * h; i++)
        for (int c = 0; c < 3; c++)
            sum[c] += px[4 * i + c];
    for (int c = 0; c < 3; c++)
        mean[c] = sum[c] / ((double)w * h);
}

int main(int argc, char **argv)
{
    const char *model = argc > 1 ? argv[1] : CTSR_DEFAULT_MODEL;
    float t = argc > 2 ? strtof(argv[2], NULL) : 0.5f;
    const int w = 64, h = 48;
    char err[512];
    ctsr_context *ctx;
    /* NULL options: automatic device (discrete GPU, integrated GPU, then the CPU) and tiling */
    if (ctsr_context_create(NULL, &ctx, err, sizeof err)) {
        fprintf(stderr, "upscale-frame: %s\n", err);
        return 1;
    }
    if (ctsr_load_model_file(ctx, model, err, sizeof err)) {
        fprintf(stderr, "upscale-frame: %s\n", err);
        ctsr_context_destroy(ctx);
        return 1;
    }
    ctsr_set_timestep(ctx, t); /* 0 = fidelity, 1 = realness */
    const int s = ctsr_scale(ctx), ow = s * w, oh = s * h;
    uint8_t *in = malloc((size_t)w * h * 4), *out = malloc((size_t)ow * oh * 4);
    if (!in || !out) {
        fprintf(stderr, "upscale-frame: out of memory\n");
        return 1;
    }
    /* a generated frame: colour gradients and a disc with a sharp edge */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = in + ((size_t)y * w + x) * 4;
            int disc = (x - 40) * (x - 40) + (y - 20) * (y - 20) < 150;
            p[0] = (uint8_t)(disc ? 230 : 4 * x);
            p[1] = (uint8_t)(disc ? 40 : 5 * y);
            p[2] = (uint8_t)(128 + ((x + y) % 16) * 4);
            p[3] = 255;
        }
    if (ctsr_process_rgba8(ctx, in, w, h, (size_t)w * 4, out, (size_t)ow * 4, err, sizeof err)) {
        fprintf(stderr, "upscale-frame: %s\n", err);
        return 1;
    }
    double mi[3], mo[3];
    channel_means(in, w, h, mi);
    channel_means(out, ow, oh, mo);
    printf("%dx%d -> %dx%d (x%d, t = %.2f) on %s\n", w, h, ow, oh, s, (double)t,
           ctsr_device_name(ctx));
    printf("mean RGB in %.2f %.2f %.2f out %.2f %.2f %.2f\n", mi[0], mi[1], mi[2], mo[0], mo[1],
           mo[2]);
    free(in);
    free(out);
    ctsr_context_destroy(ctx);
    return 0;
}
