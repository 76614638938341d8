/* libctsr internal: a thin layer over Vulkan (device, buffers, compute pipelines). */
#ifndef CTSR_VK_H
#define CTSR_VK_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <vulkan/vulkan.h>

#include "ctsr-abi.h" /* CTSR_PUSH_BYTES, the bindings */
#include "ctsr.h"
#include "error.h" /* ctsr_seterr, for VK_CHECK */

const char *ctsr_vk_result_str(VkResult r);

/* Turns a failing VkResult into a message and a jump to `fail` with ret = CTSR_E_VULKAN
 * (or CTSR_E_NOMEM for out-of-memory results). Needs `int ret`, `err`, `errlen` in scope. */
#define VK_CHECK(call)                                                                         \
    do {                                                                                       \
        VkResult vkr_ = (call);                                                                \
        if (vkr_ != VK_SUCCESS) {                                                              \
            ctsr_seterr(err, errlen, "%s failed: %s", #call, ctsr_vk_result_str(vkr_));        \
            ret = (vkr_ == VK_ERROR_OUT_OF_HOST_MEMORY || vkr_ == VK_ERROR_OUT_OF_DEVICE_MEMORY) \
                      ? CTSR_E_NOMEM                                                           \
                      : CTSR_E_VULKAN;                                                         \
            goto fail;                                                                         \
        }                                                                                      \
    } while (0)

typedef struct ctsr_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize size;
    void *map; /* non-NULL when host visible (persistently mapped) */
    VkBufferView view; /* vec4 texel view (ctsr_vk_buffer_view), or VK_NULL_HANDLE */
    VkDeviceSize bytes; /* what the allocation counts in ctsr_vk's bytes_allocated */
    void *host;         /* imported host memory (ctsr_vk's host_import) that we unmap, or NULL */
} ctsr_buffer;

/* Bindings of every dispatch (numbers in ctsr-abi.h, shared with the shaders): storage
 * buffers 0..3; uniform texel buffers (vec4 texels) 4..6 over the memory of bindings 0 (which
 * window attention reads through: on lavapipe texelFetch of a vec4 is much faster than vec4
 * SSBO loads), 2 (the weights) and 3 (the FiLM vectors; the table of a timestep map); storage
 * texel buffers 7 and 8 over the memory of bindings 0 and 1, which the convolutions read
 * (their input; their output's previous values) through: on lavapipe imageLoad is an inline
 * gather, cheaper still than texelFetch. Every buffer has uniform and storage texel usage; the
 * texel views are the buffers' `view`. */
#define CTSR_ALL_BINDINGS (CTSR_BINDINGS + CTSR_TEXEL_BINDINGS + CTSR_IMAGE_BINDINGS)
/* the views of bindings CTSR_BINDINGS.. (texel and storage texel buffers) */
#define CTSR_VIEW_BINDINGS (CTSR_TEXEL_BINDINGS + CTSR_IMAGE_BINDINGS)

/* the descriptor type of binding b */
static inline VkDescriptorType ctsr_vk_binding_type(int b)
{
    return b < CTSR_BINDINGS           ? VK_DESCRIPTOR_TYPE_STORAGE_BUFFER
           : b < CTSR_BINDING_IN_IMAGE ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                       : VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER;
}

typedef struct ctsr_vk {
    VkInstance instance;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout pipe_layout;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem_props;
    uint32_t subgroup_size;
    int subgroup_shuffle; /* shuffle supported in compute with size >= 8, multiple of 8 */
    int fp16_storage;     /* storageBuffer16BitAccess + shaderFloat16 + RGBA16F texel buffers */
    int storage8;         /* storageBuffer8BitAccess (enabled when present) */
    int is_cpu;
    /* CPU devices with VK_EXT_external_memory_host (not with CTSR_NO_HOST_MEMORY set): buffers
     * of CTSR_VK_HUGE bytes or more live in memory libctsr maps itself, aligned to and sized
     * in CTSR_VK_HUGE and advised as transparent huge pages. A CPU device's memory is
     * touched for the first time by the first frame's dispatches, and a 4 KiB page fault
     * costs about 7 us here: the 38 MiB of `default`'s tile buffers at 320x180 took about
     * 100 ms of its first frame in 14,500 faults, against a few ms in 2 MiB pages. */
    int host_import;
    PFN_vkGetMemoryHostPointerPropertiesEXT get_host_props;
    size_t bytes_allocated;
} ctsr_vk;

#define CTSR_VK_HUGE ((VkDeviceSize)2 << 20)

/* Fails (CTSR_E_NO_DEVICE) when the device cannot read RGBA32F texel buffers (uniform and
 * storage), which the shaders need; without them for RGBA16F, fp16_storage is 0. */
int ctsr_vk_init(ctsr_vk *vk, int device_index, int validation, char *err, size_t errlen);
void ctsr_vk_destroy(ctsr_vk *vk);

/* host_visible: 1 = must be mappable (and coherent), 0 = device local preferred. */
int ctsr_vk_buffer_create(ctsr_vk *vk, ctsr_buffer *b, VkDeviceSize size, int host_visible,
                          char *err, size_t errlen);
void ctsr_vk_buffer_destroy(ctsr_vk *vk, ctsr_buffer *b);
/* Creates b->view: the whole buffer as RGBA32F (fp16 = 0) or RGBA16F texels. */
int ctsr_vk_buffer_view(ctsr_vk *vk, ctsr_buffer *b, int fp16, char *err, size_t errlen);
/* Creates b->view: its first `bytes` (a multiple of 16) as RGBA32F texels. */
int ctsr_vk_buffer_view_part(ctsr_vk *vk, ctsr_buffer *b, VkDeviceSize bytes, char *err,
                             size_t errlen);
/* Copies host data into a buffer (mapped write, or a staging copy for device-local memory). */
int ctsr_vk_upload(ctsr_vk *vk, ctsr_buffer *b, const void *data, VkDeviceSize size,
                   char *err, size_t errlen);

/* A descriptor pool for `nsets` sets of the layout (every binding once per set). */
int ctsr_vk_descriptor_pool(ctsr_vk *vk, uint32_t nsets, VkDescriptorPool *out, char *err,
                            size_t errlen);

/* Compute pipeline from SPIR-V and int32 specialization constants 0..nspec-1. */
int ctsr_vk_pipeline(ctsr_vk *vk, const uint32_t *spv, size_t spv_bytes, const int32_t *spec,
                     int nspec, VkPipeline *out, char *err, size_t errlen);

/* Submits the recorded command buffer and waits for it. */
int ctsr_vk_submit_wait(ctsr_vk *vk, char *err, size_t errlen);

#endif
