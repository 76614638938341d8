/* engine-faults: libctsr built with the CTSR_FAULT hook (libctsr-faults). A lost device at
 * the N-th frame fails that frame and every later one with CTSR_E_VULKAN and a message naming
 * VK_ERROR_DEVICE_LOST, and the context is still destroyed cleanly; a failed allocation fails
 * one frame with CTSR_E_NOMEM, and the next frame allocates again and gives the same output
 * with no more device memory. */
#include <stdlib.h>
#include <string.h>

#include "ctsr.h"
#include "util.h"

static ctsr_context *open_with(const char *fault)
{
    char err[512] = "";
    ctsr_context *ctx = NULL;
    setenv("CTSR_FAULT", fault, 1);
    int r = ctsr_context_create(&(ctsr_options){.device_index = -1}, &ctx, err, sizeof err);
    TU_EXPECT(r == 0, "context: %s", err);
    if (r)
        return NULL;
    r = ctsr_load_model_file(ctx, tu_data_path("golden_small.safetensors"), err, sizeof err);
    TU_EXPECT(r == 0, "load: %s", err);
    unsetenv("CTSR_FAULT");
    return ctx;
}

int main(void)
{
    enum { W = 9, H = 7 };
    uint8_t in[W * H * 4], out1[W * H * 16], out[W * H * 16];
    char err[512];
    for (int i = 0; i < W * H * 4; i++)
        in[i] = (uint8_t)(i * 37 + 11);

    ctsr_context *ctx = open_with("device-lost:2");
    if (!ctx)
        return tu_finish("engine-faults", tu_passed);
    int r = ctsr_process_rgba8(ctx, in, W, H, W * 4, out1, W * 8, err, sizeof err);
    TU_EXPECT(r == 0, "frame 1: %s", err);
    for (int f = 2; f <= 4; f++) {
        err[0] = 0;
        r = ctsr_process_rgba8(ctx, in, W, H, W * 4, out, W * 8, err, sizeof err);
        TU_EXPECT(r == CTSR_E_VULKAN && strstr(err, "VK_ERROR_DEVICE_LOST"),
                  "frame %d after a lost device: %d '%s'", f, r, err);
    }
    printf("device lost: %s\n", err);
    ctsr_context_destroy(ctx);

    ctx = open_with("alloc:2");
    if (!ctx)
        return tu_finish("engine-faults", tu_passed);
    r = ctsr_process_rgba8(ctx, in, W, H, W * 4, out1, W * 8, err, sizeof err);
    TU_EXPECT(r == 0, "frame 1: %s", err);
    const size_t mem = ctsr_device_memory(ctx);
    err[0] = 0;
    r = ctsr_process_rgba8(ctx, in, W, H, W * 4, out, W * 8, err, sizeof err);
    TU_EXPECT(r == CTSR_E_NOMEM && strstr(err, "VK_ERROR_OUT_OF_DEVICE_MEMORY"),
              "frame 2: %d '%s'", r, err);
    printf("failed allocation: %s\n", err);
    TU_EXPECT(ctsr_device_memory(ctx) < mem, "the frame buffer was not released");
    memset(out, 0, sizeof out);
    r = ctsr_process_rgba8(ctx, in, W, H, W * 4, out, W * 8, err, sizeof err);
    TU_EXPECT(r == 0 && !memcmp(out, out1, sizeof out), "frame 3 after a failed allocation: %s",
              err);
    TU_EXPECT(ctsr_device_memory(ctx) <= mem, "device memory %zu, was %zu",
              ctsr_device_memory(ctx), mem);
    ctsr_context_destroy(ctx);
    return tu_finish("engine-faults", tu_passed);
}
