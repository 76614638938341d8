/* engine-api: libctsr's error handling and state rules on a real Vulkan device: bad arguments
 * give a clear error and lose nothing (a failed model load keeps the loaded model), timestep
 * clamping, buffer growth and shrink, automatic tiling under a memory budget. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctsr.h"
#include "util.h"

int main(void)
{
    char err[512] = "";
    ctsr_context *ctx = NULL;
    char names[8][256];
    int n = ctsr_list_devices(names, 8, err, sizeof err);
    TU_EXPECT(n >= 1, "no Vulkan device listed: %s", err);
    for (int i = 0; i < n && i < 8; i++)
        printf("device %d: %s\n", i, names[i]);

    int r = ctsr_context_create(&(ctsr_options){.device_index = 99}, &ctx, err, sizeof err);
    TU_EXPECT(r == CTSR_E_NO_DEVICE && ctx == NULL && strstr(err, "99"),
           "device 99: r=%d err='%s'", r, err);
    r = ctsr_context_create(&(ctsr_options){.device_index = -1, .tile_size = -3}, &ctx, err,
                            sizeof err);
    TU_EXPECT(r == CTSR_E_INVALID && strstr(err, "tile"), "negative tile: r=%d '%s'", r, err);

    r = ctsr_context_create(&(ctsr_options){.device_index = -1, .precision = CTSR_PRECISION_FP32},
                            &ctx, err, sizeof err);
    TU_EXPECT(r == 0, "context: %s", err);
    if (r)
        return tu_finish("engine-api", tu_passed);

    float in[7 * 5 * 3], out[14 * 10 * 3], out2[14 * 10 * 3];
    uint32_t seed = 3;
    tu_rand_fill(in, sizeof in / sizeof *in, 0, 1, &seed);
    r = ctsr_process_rgb_f32(ctx, in, 7, 5, out, err, sizeof err);
    TU_EXPECT(r == CTSR_E_NO_MODEL && strstr(err, "model"), "no model: r=%d '%s'", r, err);
    TU_EXPECT(ctsr_scale(ctx) == 0, "scale without model");

    r = ctsr_load_model_file(ctx, tu_data_path("golden_small.safetensors"), err, sizeof err);
    TU_EXPECT(r == 0, "load: %s", err);
    TU_EXPECT(ctsr_scale(ctx) == 2 && ctsr_model_config(ctx) && ctsr_model_macs_per_pixel(ctx) > 0,
           "model info");
    ctsr_set_timestep(ctx, 0.25f);
    r = ctsr_process_rgb_f32(ctx, in, 7, 5, out, err, sizeof err);
    TU_EXPECT(r == 0, "process: %s", err);

    /* a failed load (corrupt bytes, missing file) keeps the loaded model */
    static const char junk[] = "\x10\x00\x00\x00\x00\x00\x00\x00{not json at all";
    r = ctsr_load_model_memory(ctx, junk, sizeof junk - 1, err, sizeof err);
    TU_EXPECT(r == CTSR_E_FORMAT, "corrupt model: r=%d '%s'", r, err);
    r = ctsr_load_model_file(ctx, "/nonexistent/dir/model.safetensors", err, sizeof err);
    TU_EXPECT(r == CTSR_E_IO && strstr(err, "/nonexistent/dir/model.safetensors"),
           "missing model: r=%d '%s'", r, err);
    r = ctsr_process_rgb_f32(ctx, in, 7, 5, out2, err, sizeof err);
    TU_EXPECT(r == 0 && !memcmp(out, out2, sizeof out), "model lost after a failed load: %s", err);

    /* bad frames */
    uint8_t px[16] = {0}, big[64] = {0};
    TU_EXPECT(ctsr_process_rgba8(ctx, px, 0, 1, 4, big, 8, err, sizeof err) == CTSR_E_INVALID,
           "zero width");
    TU_EXPECT(ctsr_process_rgba8(ctx, px, 2, -1, 8, big, 16, err, sizeof err) == CTSR_E_INVALID,
           "negative height");
    TU_EXPECT(ctsr_process_rgba8(ctx, NULL, 1, 1, 4, big, 8, err, sizeof err) == CTSR_E_INVALID,
           "NULL input");
    TU_EXPECT(ctsr_process_rgba8(ctx, px, 2, 2, 4, big, 16, err, sizeof err) == CTSR_E_INVALID &&
               strstr(err, "stride"), "short input stride: '%s'", err);
    TU_EXPECT(ctsr_process_rgba8(ctx, px, 2, 2, 8, big, 8, err, sizeof err) == CTSR_E_INVALID,
           "short output stride");
    TU_EXPECT(ctsr_process_rgba8(ctx, px, 1, 1, 4, big, 8, err, sizeof err) == 0, "1x1: %s", err);

    /* timestep clamping */
    ctsr_set_timestep(ctx, 2.0f);
    TU_EXPECT(ctsr_get_timestep(ctx) == 1.0f, "t=2 -> %g", ctsr_get_timestep(ctx));
    ctsr_set_timestep(ctx, -1.0f);
    TU_EXPECT(ctsr_get_timestep(ctx) == 0.0f, "t=-1 -> %g", ctsr_get_timestep(ctx));
    ctsr_set_timestep(ctx, NAN);
    TU_EXPECT(ctsr_get_timestep(ctx) == 0.0f, "t=NaN -> %g", ctsr_get_timestep(ctx));
    /* t changes the output, and coming back to a t gives the same output */
    ctsr_set_timestep(ctx, 1.0f);
    ctsr_process_rgb_f32(ctx, in, 7, 5, out2, err, sizeof err);
    TU_EXPECT(memcmp(out, out2, sizeof out) != 0, "t=1 equals t=0.25");
    ctsr_set_timestep(ctx, 0.25f);
    ctsr_process_rgb_f32(ctx, in, 7, 5, out2, err, sizeof err);
    TU_EXPECT(!memcmp(out, out2, sizeof out), "t=0.25 not reproducible");
    TU_EXPECT(ctsr_set_tile_size(ctx, -1, err, sizeof err) == CTSR_E_INVALID, "tile -1");

    /* issue 9: a tile size near INT_MAX overflowed cdiv(): no tile was recorded and the call
     * returned 0 with an unwritten output. Now it is one tile, the untiled frame. */
    {
        static const int tiles[] = {2147483647, 2147483646, 2147483640, 1 << 30, 17};
        for (size_t i = 0; i < sizeof tiles / sizeof *tiles; i++) {
            TU_EXPECT(ctsr_set_tile_size(ctx, tiles[i], err, sizeof err) == 0, "tile %d", tiles[i]);
            int T = ctsr_effective_tile_size(ctx, 7, 5);
            TU_EXPECT(T >= 7 && T <= 8, "tile %d: effective %d for 7x5", tiles[i], T);
            TU_EXPECT(tiles[i] < 16384 || (ctsr_effective_tile_size(ctx, 16384, 16384) >= 16384 &&
                          ctsr_effective_tile_size(ctx, 16384, 16384) <= 16384 + 8),
                      "tile %d: effective %d for 16384^2", tiles[i],
                      ctsr_effective_tile_size(ctx, 16384, 16384));
            memset(out2, 0xff, sizeof out2);
            r = ctsr_process_rgb_f32(ctx, in, 7, 5, out2, err, sizeof err);
            TU_EXPECT(r == 0 && tu_max_abs_diff(out, out2, sizeof out / sizeof *out) < 1e-5f,
                      "tile %d: output differs from the untiled frame (%s)", tiles[i], err);
        }
        ctsr_set_tile_size(ctx, 0, err, sizeof err);
    }
    /* strides so large that the last row's offset overflows a size_t (refused before any
     * access) */
    TU_EXPECT(ctsr_process_rgba8(ctx, px, 1, 3, SIZE_MAX / 2 + 8, big, 8, err, sizeof err) ==
                  CTSR_E_INVALID && strstr(err, "stride"),
              "input stride overflowing: '%s'", err);
    TU_EXPECT(ctsr_process_rgba8(ctx, px, 1, 2, 4, big, SIZE_MAX / 3, err, sizeof err) ==
                  CTSR_E_INVALID && strstr(err, "stride"),
              "output stride overflowing: '%s'", err);
    /* frame sizes: 16384 a side, the device's buffer limit named */
    TU_EXPECT(ctsr_check_frame_size(ctx, CTSR_FRAME_RGBA8, 16385, 1, err, sizeof err) ==
                  CTSR_E_INVALID && strstr(err, "16384"), "16385 wide: '%s'", err);
    TU_EXPECT(ctsr_check_frame_size(ctx, CTSR_FRAME_RGBA8, 1, 0, err, sizeof err) ==
                  CTSR_E_INVALID, "0 high: '%s'", err);
    TU_EXPECT(ctsr_check_frame_size(ctx, CTSR_FRAME_RGBA8, 64, 64, err, sizeof err) == 0,
              "64x64: '%s'", err);
    TU_EXPECT(ctsr_check_frame_size(ctx, CTSR_FRAME_RGB_F32, 16384, 16384, err, sizeof err) ==
                  CTSR_E_INVALID && strstr(err, "maxStorageBufferRange"),
              "16384^2 float: '%s'", err);
    printf("16384x16384 float frame: %s\n", err);
    TU_EXPECT(ctsr_check_frame_size(ctx, 7, 4, 4, err, sizeof err) == CTSR_E_INVALID,
              "unknown layout");
    {
        float one[3] = {0};
        r = ctsr_process_rgb_f32(ctx, one, 16384, 16384, one, err, sizeof err);
        TU_EXPECT(r == CTSR_E_INVALID && strstr(err, "maxStorageBufferRange"),
                  "16384^2 float processed: %d '%s'", r, err);
    }

    /* grow then shrink the frame: buffers grow, smaller frames reuse them */
    {
        const int w = 61, h = 37;
        float *bin = calloc((size_t)w * h * 3, 4), *bout = calloc((size_t)w * h * 12, 4);
        r = ctsr_process_rgb_f32(ctx, bin, w, h, bout, err, sizeof err);
        TU_EXPECT(r == 0, "61x37: %s", err);
        r = ctsr_process_rgb_f32(ctx, in, 7, 5, out2, err, sizeof err);
        TU_EXPECT(r == 0 && !memcmp(out, out2, sizeof out), "7x5 after 61x37 differs");
        free(bin);
        free(bout);
    }
    ctsr_context_destroy(ctx);

    /* automatic tiling: a 1080p frame of the default model under a 64 MiB budget is tiled and
     * the tile buffers stay within the budget (nothing is processed: lavapipe is slow) */
    r = ctsr_context_create(&(ctsr_options){.device_index = -1, .memory_budget = 64u << 20,
                                            .precision = CTSR_PRECISION_FP32},
                            &ctx, err, sizeof err);
    r |= ctsr_load_model_file(ctx, tu_data_path("golden_default.safetensors"), err, sizeof err);
    TU_EXPECT(r == 0, "default model: %s", err);
    if (!r) {
        int T = ctsr_effective_tile_size(ctx, 1920, 1080), P = ctsr_tile_overlap(ctx);
        double region = (double)(T + 2 * P) * (T + 2 * P);
        double bytes = region * 16 * (1 + 8 + 24 + 8); /* IMG + X + T1 (96 ch) + T2, fp32 */
        printf("1080p, 64 MiB budget: tile %d, overlap %d, tile buffers %.1f MiB\n", T, P,
               bytes / 1048576.0);
        TU_EXPECT(T < 1920 && T % 8 == 0 && P == 32 && bytes <= 64.0 * 1048576.0,
               "auto tile %d overlap %d (%.0f bytes)", T, P, bytes);
        TU_EXPECT(ctsr_effective_tile_size(ctx, 64, 48) >= 64, "small frames are not tiled");
    }
    ctsr_context_destroy(ctx);
    ctsr_context_destroy(NULL);
    return tu_finish("engine-api", tu_passed);
}
