/* ctsr-upscale: upscale a PNG with libctsr (the engine without GStreamer).
 *
 *   ctsr-upscale [--model FILE] [--timestep T] [--device N] [--tile N] in.png out.png
 *
 * The default model is $CTSR_MODEL_PATH when set, else, when this binary is the one in the build
 * directory, the source tree's models/ctsr-x2.safetensors, else the installed ctsr-x2.safetensors
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

typedef struct args {
    const char *model, *in_path, *out_path;
    double t;
    int device, tile;
} args;

/* Command line -> a; 0, or the exit status (2) after a message. */
static int parse_args(int argc, char **argv, const char *default_model, args *a)
{
    *a = (args){.model = default_model, .t = 0.5, .device = -1};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (v && !strcmp(o, "--model")) {
            a->model = v, i++;
        } else if (v && !strcmp(o, "--timestep")) {
            a->t = strtod(v, &end), i++;
            if (*end || !(a->t >= 0.0 && a->t <= 1.0)) {
                fprintf(stderr,
                        "ctsr-upscale: --timestep must be a number in [0, 1], got '%s'\n", v);
                return 2;
            }
        } else if (v && !strcmp(o, "--device")) {
            a->device = atoi(v), i++;
        } else if (v && !strcmp(o, "--tile")) {
            a->tile = atoi(v), i++;
        } else if (o[0] == '-' || (a->in_path && a->out_path)) {
            usage(default_model);
            return 2;
        } else if (!a->in_path) {
            a->in_path = o;
        } else {
            a->out_path = o;
        }
    }
    if (!a->in_path || !a->out_path) {
        usage(default_model);
        return 2;
    }
    return 0;
}

/* The PNG at path as RGBA8 (img holds its size; the caller frees both), or NULL after a
 * message. */
static uint8_t *read_png(const char *path, png_image *img)
{
    memset(img, 0, sizeof *img);
    img->version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(img, path)) {
        fprintf(stderr, "ctsr-upscale: cannot read %s: %s\n", path, img->message);
        return NULL;
    }
    img->format = PNG_FORMAT_RGBA;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(*img));
    if (!px || !png_image_finish_read(img, NULL, px, 0, NULL)) {
        fprintf(stderr, "ctsr-upscale: cannot decode %s: %s\n", path, img->message);
        free(px);
        return NULL;
    }
    return px;
}

static int write_png(const char *path, const uint8_t *px, int w, int h)
{
    png_image o;
    memset(&o, 0, sizeof o);
    o.version = PNG_IMAGE_VERSION;
    o.width = (png_uint_32)w;
    o.height = (png_uint_32)h;
    o.format = PNG_FORMAT_RGBA;
    if (!png_image_write_to_file(&o, path, 0, px, 0, NULL)) {
        fprintf(stderr, "ctsr-upscale: cannot write %s: %s\n", path, o.message);
        return 1;
    }
    return 0;
}

/* Loads the model and upscales in (w x h) into *out ((s w) x (s h), *s the scale); 0, or 1
 * after a message. */
static int upscale(const args *a, const char *default_model, const uint8_t *in, int w, int h,
                   uint8_t **out, int *s)
{
    char err[1024];
    ctsr_context *ctx;
    *out = NULL;
    if (ctsr_context_create(&(ctsr_options){.device_index = a->device, .tile_size = a->tile},
                            &ctx, err, sizeof err)) {
        fprintf(stderr, "ctsr-upscale: %s\n", err);
        return 1;
    }
    if (ctsr_load_model_file(ctx, a->model, err, sizeof err)) {
        fprintf(stderr, "ctsr-upscale: %s\n", err);
        if (a->model == default_model)
            fprintf(stderr, "ctsr-upscale: give a model with --model FILE or CTSR_MODEL_PATH\n");
        ctsr_context_destroy(ctx);
        return 1;
    }
    *s = ctsr_scale(ctx);
    *out = malloc((size_t)w * h * *s * *s * 4);
    ctsr_set_timestep(ctx, (float)a->t);
    fprintf(stderr, "ctsr-upscale: %s %dx%d -> %dx%d on %s, model %s, t=%.2f\n", a->in_path, w,
            h, w * *s, h * *s, ctsr_device_name(ctx), a->model, a->t);
    int rc = 0;
    if (!*out || ctsr_process_rgba8(ctx, in, w, h, (size_t)w * 4, *out, (size_t)w * *s * 4, err,
                                    sizeof err)) {
        fprintf(stderr, "ctsr-upscale: %s\n", *out ? err : "out of memory");
        rc = 1;
    }
    ctsr_context_destroy(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    char default_model[4096];
    if (!ctsr_default_model_path("/proc/self/exe", default_model, sizeof default_model)) {
        fprintf(stderr, "ctsr-upscale: the default model's path is too long\n");
        return 1;
    }
    args a;
    int rc = parse_args(argc, argv, default_model, &a), s = 0;
    if (rc)
        return rc;
    png_image img;
    uint8_t *in = read_png(a.in_path, &img), *out = NULL;
    const int w = (int)img.width, h = (int)img.height;
    rc = !in || upscale(&a, default_model, in, w, h, &out, &s) ||
         write_png(a.out_path, out, w * s, h * s);
    png_image_free(&img);
    free(in);
    free(out);
    return rc;
}
