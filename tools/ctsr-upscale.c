/* ctsr-upscale: upscale a PNG with libctsr (the engine without GStreamer).
 *
 *   ctsr-upscale [--model FILE] [--timestep T] [--device N] [--tile N] in.png out.png
 *
 * The default model is $CTSR_MODEL_PATH when set, else the installed ctsr-x2.safetensors, else,
 * when this binary is the one in the build directory, the source tree's models/ctsr-x2.safetensors
 * (default-model.h). */
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctsr.h"
#include "default-model.h"

static void usage(const char *default_model)
{
    fprintf(stderr,
            "usage: ctsr-upscale [--model FILE] [--timestep T] [--device N] [--tile N] "
            "in.png out.png\n"
            "default model: %s\n",
            default_model);
}

int main(int argc, char **argv)
{
    char default_model[4096];
    if (!ctsr_default_model_path("/proc/self/exe", default_model, sizeof default_model)) {
        fprintf(stderr, "ctsr-upscale: the default model's path is too long\n");
        return 1;
    }
    const char *model = default_model;
    const char *in_path = NULL, *out_path = NULL;
    double t = 0.5;
    int device = -1, tile = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (v && !strcmp(a, "--model")) {
            model = v, i++;
        } else if (v && !strcmp(a, "--timestep")) {
            t = strtod(v, &end), i++;
            if (*end || !(t >= 0.0 && t <= 1.0)) {
                fprintf(stderr, "ctsr-upscale: --timestep must be a number in [0, 1], got '%s'\n", v);
                return 2;
            }
        } else if (v && !strcmp(a, "--device")) {
            device = atoi(v), i++;
        } else if (v && !strcmp(a, "--tile")) {
            tile = atoi(v), i++;
        } else if (a[0] == '-') {
            usage(default_model);
            return 2;
        } else if (!in_path) {
            in_path = a;
        } else if (!out_path) {
            out_path = a;
        } else {
            usage(default_model);
            return 2;
        }
    }
    if (!in_path || !out_path) {
        usage(default_model);
        return 2;
    }

    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, in_path)) {
        fprintf(stderr, "ctsr-upscale: cannot read %s: %s\n", in_path, img.message);
        return 1;
    }
    img.format = PNG_FORMAT_RGBA;
    uint8_t *in = malloc(PNG_IMAGE_SIZE(img));
    if (!in || !png_image_finish_read(&img, NULL, in, 0, NULL)) {
        fprintf(stderr, "ctsr-upscale: cannot decode %s: %s\n", in_path, img.message);
        return 1;
    }
    char err[1024];
    ctsr_context *ctx;
    if (ctsr_context_create(&(ctsr_options){.device_index = device, .tile_size = tile}, &ctx, err,
                            sizeof err)) {
        fprintf(stderr, "ctsr-upscale: %s\n", err);
        return 1;
    }
    if (ctsr_load_model_file(ctx, model, err, sizeof err)) {
        fprintf(stderr, "ctsr-upscale: %s\n", err);
        if (model == default_model)
            fprintf(stderr, "ctsr-upscale: give a model with --model FILE or CTSR_MODEL_PATH\n");
        return 1;
    }
    const int w = (int)img.width, h = (int)img.height, s = ctsr_scale(ctx);
    uint8_t *out = malloc((size_t)w * h * s * s * 4);
    ctsr_set_timestep(ctx, (float)t);
    fprintf(stderr, "ctsr-upscale: %s %dx%d -> %dx%d on %s, model %s, t=%.2f\n", in_path, w, h,
            w * s, h * s, ctsr_device_name(ctx), model, t);
    if (!out || ctsr_process_rgba8(ctx, in, w, h, (size_t)w * 4, out, (size_t)w * s * 4, err,
                                   sizeof err)) {
        fprintf(stderr, "ctsr-upscale: %s\n", out ? err : "out of memory");
        return 1;
    }
    png_image o;
    memset(&o, 0, sizeof o);
    o.version = PNG_IMAGE_VERSION;
    o.width = (png_uint_32)(w * s);
    o.height = (png_uint_32)(h * s);
    o.format = PNG_FORMAT_RGBA;
    if (!png_image_write_to_file(&o, out_path, 0, out, 0, NULL)) {
        fprintf(stderr, "ctsr-upscale: cannot write %s: %s\n", out_path, o.message);
        return 1;
    }
    ctsr_context_destroy(ctx);
    png_image_free(&img);
    free(in);
    free(out);
    return 0;
}
