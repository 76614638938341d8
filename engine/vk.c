/* libctsr: Vulkan instance, device, buffers and compute pipelines. */
#include "vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

const char *ctsr_vk_result_str(VkResult r)
{
    switch (r) {
#define CASE(x) case x: return #x
    CASE(VK_SUCCESS);
    CASE(VK_NOT_READY);
    CASE(VK_TIMEOUT);
    CASE(VK_INCOMPLETE);
    CASE(VK_ERROR_OUT_OF_HOST_MEMORY);
    CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY);
    CASE(VK_ERROR_INITIALIZATION_FAILED);
    CASE(VK_ERROR_DEVICE_LOST);
    CASE(VK_ERROR_MEMORY_MAP_FAILED);
    CASE(VK_ERROR_LAYER_NOT_PRESENT);
    CASE(VK_ERROR_EXTENSION_NOT_PRESENT);
    CASE(VK_ERROR_FEATURE_NOT_PRESENT);
    CASE(VK_ERROR_INCOMPATIBLE_DRIVER);
    CASE(VK_ERROR_TOO_MANY_OBJECTS);
    CASE(VK_ERROR_FORMAT_NOT_SUPPORTED);
    CASE(VK_ERROR_FRAGMENTED_POOL);
    CASE(VK_ERROR_OUT_OF_POOL_MEMORY);
#undef CASE
    default:
        return "VkResult error";
    }
}

static int device_rank(const VkPhysicalDeviceProperties *p)
{
    switch (p->deviceType) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 4;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 1;
    default: return 0;
    }
}

static int compute_queue_family(VkPhysicalDevice phys, uint32_t *family)
{
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(phys, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (!q)
        return 0;
    vkGetPhysicalDeviceQueueFamilyProperties(phys, &n, q);
    int found = 0;
    /* prefer a compute queue without graphics (async compute), else any compute queue */
    for (int pass = 0; pass < 2 && !found; pass++)
        for (uint32_t i = 0; i < n && !found; i++)
            if ((q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) &&
                (pass == 1 || !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT))) {
                *family = i;
                found = 1;
            }
    free(q);
    return found;
}

static int create_instance(VkInstance *inst, int validation, char *err, size_t errlen)
{
    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "libctsr",
        .pEngineName = "libctsr",
        .apiVersion = VK_API_VERSION_1_1,
    };
    const char *layer = "VK_LAYER_KHRONOS_validation";
    int use_layer = 0;
    if (validation) {
        uint32_t n = 0;
        vkEnumerateInstanceLayerProperties(&n, NULL);
        VkLayerProperties *lp = calloc(n ? n : 1, sizeof *lp);
        if (lp && vkEnumerateInstanceLayerProperties(&n, lp) == VK_SUCCESS)
            for (uint32_t i = 0; i < n; i++)
                use_layer |= !strcmp(lp[i].layerName, layer);
        free(lp);
    }
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .pApplicationInfo = &app,
        .enabledLayerCount = use_layer ? 1 : 0,
        .ppEnabledLayerNames = use_layer ? &layer : NULL,
    };
    VkResult r = vkCreateInstance(&ci, NULL, inst);
    if (r != VK_SUCCESS) {
        ctsr_seterr(err, errlen,
                    "no Vulkan instance (%s): is a Vulkan driver installed? On a machine "
                    "without a GPU install Mesa's lavapipe (mesa-vulkan-drivers)",
                    ctsr_vk_result_str(r));
        return CTSR_E_NO_DEVICE;
    }
    return 0;
}

int ctsr_list_devices(char names[][256], int max, char *err, size_t errlen)
{
    VkInstance inst;
    int ret = create_instance(&inst, 0, err, errlen);
    if (ret)
        return ret;
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, NULL);
    VkPhysicalDevice *devs = calloc(n ? n : 1, sizeof *devs);
    if (!devs) {
        vkDestroyInstance(inst, NULL);
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    vkEnumeratePhysicalDevices(inst, &n, devs);
    for (uint32_t i = 0; i < n && (int)i < max; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(devs[i], &p);
        snprintf(names[i], 256, "%s", p.deviceName);
    }
    free(devs);
    vkDestroyInstance(inst, NULL);
    return (int)n;
}

/* Picks vk->phys and vk->queue_family: device_index, or (-1) the best ranked device with
 * Vulkan 1.1 compute. */
static int pick_device(ctsr_vk *vk, int device_index, char *err, size_t errlen)
{
    int ret = 0;
    VkPhysicalDevice *devs = NULL;
    uint32_t n = 0;
    VK_CHECK(vkEnumeratePhysicalDevices(vk->instance, &n, NULL));
    if (n == 0) {
        ctsr_seterr(err, errlen, "no Vulkan device found: install a GPU driver, or Mesa's "
                                 "lavapipe (mesa-vulkan-drivers) to run on the CPU");
        ret = CTSR_E_NO_DEVICE;
        goto fail;
    }
    devs = calloc(n, sizeof *devs);
    if (!devs) {
        ctsr_seterr(err, errlen, "out of memory");
        ret = CTSR_E_NOMEM;
        goto fail;
    }
    VK_CHECK(vkEnumeratePhysicalDevices(vk->instance, &n, devs));
    if (device_index >= 0) {
        if ((uint32_t)device_index >= n) {
            ctsr_seterr(err, errlen, "Vulkan device %d requested but only %u present",
                        device_index, n);
            ret = CTSR_E_NO_DEVICE;
            goto fail;
        }
        if (!compute_queue_family(devs[device_index], &vk->queue_family)) {
            ctsr_seterr(err, errlen, "Vulkan device %d has no compute queue", device_index);
            ret = CTSR_E_NO_DEVICE;
            goto fail;
        }
        vk->phys = devs[device_index];
    } else {
        int best = -1;
        for (uint32_t i = 0; i < n; i++) {
            VkPhysicalDeviceProperties p;
            uint32_t fam;
            vkGetPhysicalDeviceProperties(devs[i], &p);
            if (p.apiVersion < VK_API_VERSION_1_1 || !compute_queue_family(devs[i], &fam))
                continue;
            if (device_rank(&p) > best) {
                best = device_rank(&p);
                vk->phys = devs[i];
                vk->queue_family = fam;
            }
        }
        if (best < 0) {
            ctsr_seterr(err, errlen, "none of the %u Vulkan devices supports Vulkan 1.1 compute", n);
            ret = CTSR_E_NO_DEVICE;
            goto fail;
        }
    }
fail:
    free(devs);
    return ret;
}

/* Subgroup shuffle, fp16 storage and 8-bit storage of vk->phys (what the shaders can use). */
static void query_features(ctsr_vk *vk)
{
    VkPhysicalDeviceSubgroupProperties sg = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                      .pNext = &sg};
    vkGetPhysicalDeviceProperties2(vk->phys, &p2);
    vk->subgroup_size = sg.subgroupSize;
    vk->subgroup_shuffle = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                           (sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) &&
                           sg.subgroupSize >= 8 && sg.subgroupSize % 8 == 0 &&
                           !getenv("CTSR_NO_SUBGROUP_SHUFFLE");

    VkPhysicalDeviceShaderFloat16Int8Features f16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDevice16BitStorageFeatures s16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES, .pNext = &f16};
    /* 8-bit storage (core in 1.2, else VK_KHR_8bit_storage): the YUV frame shaders */
    VkPhysicalDevice8BitStorageFeatures s8 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES, .pNext = &s16};
    VkPhysicalDeviceFeatures2 feat = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2,
                                      .pNext = &s8};
    int has_f16_ext = 0, has_s8_ext = 0, has_host_ext = 0;
    {
        uint32_t ne = 0;
        vkEnumerateDeviceExtensionProperties(vk->phys, NULL, &ne, NULL);
        VkExtensionProperties *ext = calloc(ne ? ne : 1, sizeof *ext);
        if (ext && vkEnumerateDeviceExtensionProperties(vk->phys, NULL, &ne, ext) == VK_SUCCESS)
            for (uint32_t i = 0; i < ne; i++)
            {
                has_f16_ext |= !strcmp(ext[i].extensionName,
                                       VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
                has_s8_ext |= !strcmp(ext[i].extensionName, VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
                has_host_ext |= !strcmp(ext[i].extensionName,
                                        VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
            }
        free(ext);
    }
    if (!has_f16_ext && vk->props.apiVersion < VK_API_VERSION_1_2)
        s16.pNext = NULL;
    const int s8_known = has_s8_ext || vk->props.apiVersion >= VK_API_VERSION_1_2;
    if (!s8_known)
        feat.pNext = &s16;
    vkGetPhysicalDeviceFeatures2(vk->phys, &feat);
    vk->fp16_storage = s16.storageBuffer16BitAccess && s16.pNext && f16.shaderFloat16;
    vk->storage8 = s8_known && s8.storageBuffer8BitAccess && !getenv("CTSR_NO_SHADER_YUV");
    /* host memory for large buffers: only where device memory is host memory anyway */
    vk->host_import = vk->is_cpu && has_host_ext && !getenv("CTSR_NO_HOST_MEMORY");
    if (vk->host_import) {
        VkPhysicalDeviceExternalMemoryHostPropertiesEXT hp = {
            .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
        VkPhysicalDeviceProperties2 pp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2,
                                          .pNext = &hp};
        vkGetPhysicalDeviceProperties2(vk->phys, &pp);
        vk->host_import = hp.minImportedHostPointerAlignment > 0 &&
                          CTSR_VK_HUGE % hp.minImportedHostPointerAlignment == 0;
    }

}

/* The texel buffer formats of the shaders: RGBA32F (weights, FiLM vectors, fp32 activations)
 * as uniform and storage texel buffers, or the device is refused; RGBA16F (fp16 activations)
 * likewise, or fp16 storage is off. (Lavapipe has both; the check turns a device without
 * them into a message instead of a failing vkCreateBufferView or a wrong result.) */
static int check_texel_formats(ctsr_vk *vk, char *err, size_t errlen)
{
    const VkFormatFeatureFlags need = VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT |
                                      VK_FORMAT_FEATURE_STORAGE_TEXEL_BUFFER_BIT;
    VkFormatProperties f32, f16;
    vkGetPhysicalDeviceFormatProperties(vk->phys, VK_FORMAT_R32G32B32A32_SFLOAT, &f32);
    vkGetPhysicalDeviceFormatProperties(vk->phys, VK_FORMAT_R16G16B16A16_SFLOAT, &f16);
    if ((f32.bufferFeatures & need) != need) {
        const int uni = !!(f32.bufferFeatures & VK_FORMAT_FEATURE_UNIFORM_TEXEL_BUFFER_BIT);
        ctsr_seterr(err, errlen, "Vulkan device %s does not support R32G32B32A32_SFLOAT %s texel "
                    "buffers, which libctsr's shaders need", vk->props.deviceName,
                    uni ? "storage" : "uniform");
        return CTSR_E_NO_DEVICE;
    }
    if ((f16.bufferFeatures & need) != need)
        vk->fp16_storage = 0;
    return 0;
}

/* The logical device and its queue, with exactly the features query_features found. */
static int create_device(ctsr_vk *vk, char *err, size_t errlen)
{
    int ret = 0;
    /* enable exactly what we use */
    VkPhysicalDeviceShaderFloat16Int8Features f16_on = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
        .shaderFloat16 = VK_TRUE};
    VkPhysicalDevice16BitStorageFeatures s16_on = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .pNext = &f16_on, .storageBuffer16BitAccess = VK_TRUE};
    VkPhysicalDevice8BitStorageFeatures s8_on = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
        .pNext = vk->fp16_storage ? &s16_on : NULL, .storageBuffer8BitAccess = VK_TRUE};
    const char *exts[3];
    uint32_t next = 0;
    if (vk->host_import)
        exts[next++] = VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
    if (vk->fp16_storage && vk->props.apiVersion < VK_API_VERSION_1_2)
        exts[next++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
    if (vk->storage8 && vk->props.apiVersion < VK_API_VERSION_1_2)
        exts[next++] = VK_KHR_8BIT_STORAGE_EXTENSION_NAME;
    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                   .queueFamilyIndex = vk->queue_family,
                                   .queueCount = 1,
                                   .pQueuePriorities = &prio};
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                              .pNext = vk->storage8 ? (void *)&s8_on
                                       : vk->fp16_storage ? (void *)&s16_on : NULL,
                              .queueCreateInfoCount = 1,
                              .pQueueCreateInfos = &qci,
                              .enabledExtensionCount = next,
                              .ppEnabledExtensionNames = exts};
    VK_CHECK(vkCreateDevice(vk->phys, &dci, NULL, &vk->dev));
    vkGetDeviceQueue(vk->dev, vk->queue_family, 0, &vk->queue);
    if (vk->host_import) {
        vk->get_host_props = (PFN_vkGetMemoryHostPointerPropertiesEXT)vkGetDeviceProcAddr(
            vk->dev, "vkGetMemoryHostPointerPropertiesEXT");
        vk->host_import = vk->get_host_props != NULL;
    }

fail:
    return ret;
}

/* Command pool and buffer, fence, descriptor set layout and pipeline layout. */
static int create_layouts(ctsr_vk *vk, char *err, size_t errlen)
{
    int ret = 0;
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                   .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                   .queueFamilyIndex = vk->queue_family};
    VK_CHECK(vkCreateCommandPool(vk->dev, &pci, NULL, &vk->cmd_pool));
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                       .commandPool = vk->cmd_pool,
                                       .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                       .commandBufferCount = 1};
    VK_CHECK(vkAllocateCommandBuffers(vk->dev, &cai, &vk->cmd));
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_CHECK(vkCreateFence(vk->dev, &fci, NULL, &vk->fence));

    VkDescriptorSetLayoutBinding b[CTSR_ALL_BINDINGS];
    for (int i = 0; i < CTSR_ALL_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i,
                                              .descriptorType = ctsr_vk_binding_type(i),
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dl = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = CTSR_ALL_BINDINGS,
        .pBindings = b};
    VK_CHECK(vkCreateDescriptorSetLayout(vk->dev, &dl, NULL, &vk->set_layout));
    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
                               .size = CTSR_PUSH_BYTES};
    VkPipelineLayoutCreateInfo pl = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &vk->set_layout,
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &pcr};
    VK_CHECK(vkCreatePipelineLayout(vk->dev, &pl, NULL, &vk->pipe_layout));
fail:
    return ret;
}

int ctsr_vk_init(ctsr_vk *vk, int device_index, int validation, char *err, size_t errlen)
{
    int ret = 0;
    memset(vk, 0, sizeof *vk);
    if ((ret = create_instance(&vk->instance, validation, err, errlen)))
        return ret;
    if ((ret = pick_device(vk, device_index, err, errlen)))
        goto fail;
    vkGetPhysicalDeviceProperties(vk->phys, &vk->props);
    vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->mem_props);
    vk->is_cpu = vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    query_features(vk);
    if ((ret = check_texel_formats(vk, err, errlen)) || (ret = create_device(vk, err, errlen)) ||
        (ret = create_layouts(vk, err, errlen)))
        goto fail;
    return 0;

fail:
    ctsr_vk_destroy(vk);
    return ret;
}

void ctsr_vk_destroy(ctsr_vk *vk)
{
    if (vk->dev) {
        vkDeviceWaitIdle(vk->dev);
        if (vk->pipe_layout)
            vkDestroyPipelineLayout(vk->dev, vk->pipe_layout, NULL);
        if (vk->set_layout)
            vkDestroyDescriptorSetLayout(vk->dev, vk->set_layout, NULL);
        if (vk->fence)
            vkDestroyFence(vk->dev, vk->fence, NULL);
        if (vk->cmd_pool)
            vkDestroyCommandPool(vk->dev, vk->cmd_pool, NULL);
        vkDestroyDevice(vk->dev, NULL);
    }
    if (vk->instance)
        vkDestroyInstance(vk->instance, NULL);
    memset(vk, 0, sizeof *vk);
}

static int find_memory(const ctsr_vk *vk, uint32_t bits, VkMemoryPropertyFlags want,
                       VkMemoryPropertyFlags prefer)
{
    for (int pass = 0; pass < 2; pass++) {
        VkMemoryPropertyFlags f = pass ? want : want | prefer;
        for (uint32_t i = 0; i < vk->mem_props.memoryTypeCount; i++)
            if ((bits & (1u << i)) && (vk->mem_props.memoryTypes[i].propertyFlags & f) == f)
                return (int)i;
    }
    return -1;
}

/* `bytes` (a multiple of CTSR_VK_HUGE) of fresh anonymous memory at a CTSR_VK_HUGE boundary,
 * advised as transparent huge pages (advice only: where THP is off it changes nothing), or
 * NULL */
static void *huge_map(size_t bytes)
{
    const size_t H = (size_t)CTSR_VK_HUGE, span = bytes + H;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    char *a = (char *)(((uintptr_t)p + H - 1) & ~(uintptr_t)(H - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + bytes < p + span)
        munmap(a + bytes, (size_t)(p + span - (a + bytes)));
#ifdef MADV_HUGEPAGE
    madvise(a, bytes, MADV_HUGEPAGE);
#endif
    return a;
}

/* Backs b->buf with imported host memory (vk->host_import): 0, or -1 when the device takes
 * none of it (the caller then allocates as usual), or an error code. */
static int import_host_memory(ctsr_vk *vk, ctsr_buffer *b, const VkMemoryRequirements *req,
                              int host_visible, char *err, size_t errlen)
{
    int ret = 0;
    const VkDeviceSize bytes = (req->size + CTSR_VK_HUGE - 1) / CTSR_VK_HUGE * CTSR_VK_HUGE;
    void *host = huge_map((size_t)bytes);
    if (!host) {
        ctsr_seterr(err, errlen, "out of memory: mapping %llu bytes for a buffer failed",
                    (unsigned long long)bytes);
        return CTSR_E_NOMEM;
    }
    VkMemoryHostPointerPropertiesEXT hp = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
    VK_CHECK(vk->get_host_props(vk->dev, VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
                                host, &hp));
    const uint32_t bits = req->memoryTypeBits & hp.memoryTypeBits;
    const int type = host_visible ? find_memory(vk, bits,
                                                VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                    VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                                VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                                  : find_memory(vk, bits, 0, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
    if (type < 0) {
        munmap(host, (size_t)bytes);
        return -1;
    }
    VkImportMemoryHostPointerInfoEXT imp = {
        .sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
        .handleType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT,
        .pHostPointer = host};
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                .pNext = &imp,
                                .allocationSize = bytes,
                                .memoryTypeIndex = (uint32_t)type};
    VK_CHECK(vkAllocateMemory(vk->dev, &mai, NULL, &b->mem));
    b->host = host;
    b->bytes = bytes;
    host = NULL;
    if (vk->mem_props.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)
        VK_CHECK(vkMapMemory(vk->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map));
fail:
    if (host)
        munmap(host, (size_t)bytes);
    return ret;
}

int ctsr_vk_buffer_create(ctsr_vk *vk, ctsr_buffer *b, VkDeviceSize size, int host_visible,
                          char *err, size_t errlen)
{
    int ret = 0;
    memset(b, 0, sizeof *b);
    if (size == 0)
        size = 16;
    const int import = vk->host_import && size >= CTSR_VK_HUGE;
    VkExternalMemoryBufferCreateInfo ext = {
        .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
        .handleTypes = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT};
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                              .pNext = import ? &ext : NULL,
                              .size = size,
                              .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                       VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
                                       VK_BUFFER_USAGE_STORAGE_TEXEL_BUFFER_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                       VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                              .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VK_CHECK(vkCreateBuffer(vk->dev, &bci, NULL, &b->buf));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->dev, b->buf, &req);
    if (import && (ret = import_host_memory(vk, b, &req, host_visible, err, errlen)) > 0)
        goto fail;
    if (!import || ret < 0) { /* device memory (the device took no host memory: ret -1) */
        ret = 0;
        int type = host_visible
                       ? find_memory(vk, req.memoryTypeBits,
                                     VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                         VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
                                     VK_MEMORY_PROPERTY_HOST_CACHED_BIT)
                       : find_memory(vk, req.memoryTypeBits, 0,
                                     VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
        if (type < 0) {
            ctsr_seterr(err, errlen, "no suitable Vulkan memory type for a %llu-byte buffer",
                        (unsigned long long)size);
            ret = CTSR_E_NOMEM;
            goto fail;
        }
        VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                                    .allocationSize = req.size,
                                    .memoryTypeIndex = (uint32_t)type};
        VK_CHECK(vkAllocateMemory(vk->dev, &mai, NULL, &b->mem));
        b->bytes = req.size;
        if (vk->mem_props.memoryTypes[type].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)
            VK_CHECK(vkMapMemory(vk->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map));
    }
    VK_CHECK(vkBindBufferMemory(vk->dev, b->buf, b->mem, 0));
    b->size = size;
    vk->bytes_allocated += b->bytes;
    return 0;
fail:
    ctsr_vk_buffer_destroy(vk, b);
    return ret;
}

void ctsr_vk_buffer_destroy(ctsr_vk *vk, ctsr_buffer *b)
{
    if (b->size)
        vk->bytes_allocated -= b->bytes;
    if (b->map)
        vkUnmapMemory(vk->dev, b->mem);
    if (b->view)
        vkDestroyBufferView(vk->dev, b->view, NULL);
    if (b->buf)
        vkDestroyBuffer(vk->dev, b->buf, NULL);
    if (b->mem)
        vkFreeMemory(vk->dev, b->mem, NULL);
    if (b->host)
        munmap(b->host, (size_t)b->bytes);
    memset(b, 0, sizeof *b);
}

int ctsr_vk_buffer_view(ctsr_vk *vk, ctsr_buffer *b, int fp16, char *err, size_t errlen)
{
    int ret = 0;
    const VkDeviceSize texel = fp16 ? 8 : 16;
    VkBufferViewCreateInfo vi = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                 .buffer = b->buf,
                                 .format = fp16 ? VK_FORMAT_R16G16B16A16_SFLOAT
                                                : VK_FORMAT_R32G32B32A32_SFLOAT,
                                 .range = b->size / texel * texel};
    if (b->size / texel > vk->props.limits.maxTexelBufferElements) {
        ctsr_seterr(err, errlen, "buffer of %llu bytes exceeds the device's %u texels",
                    (unsigned long long)b->size, vk->props.limits.maxTexelBufferElements);
        return CTSR_E_INVALID;
    }
    VK_CHECK(vkCreateBufferView(vk->dev, &vi, NULL, &b->view));
fail:
    return ret;
}

int ctsr_vk_buffer_view_part(ctsr_vk *vk, ctsr_buffer *b, VkDeviceSize bytes, char *err,
                             size_t errlen)
{
    int ret = 0;
    VkBufferViewCreateInfo vi = {.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
                                 .buffer = b->buf,
                                 .format = VK_FORMAT_R32G32B32A32_SFLOAT,
                                 .range = bytes};
    if (bytes > b->size || bytes % 16 || bytes / 16 > vk->props.limits.maxTexelBufferElements) {
        ctsr_seterr(err, errlen, "a view of %llu bytes of a %llu-byte buffer: beyond it, not "
                    "whole texels or over the device's %u texels", (unsigned long long)bytes,
                    (unsigned long long)b->size, vk->props.limits.maxTexelBufferElements);
        return CTSR_E_INVALID;
    }
    VK_CHECK(vkCreateBufferView(vk->dev, &vi, NULL, &b->view));
fail:
    return ret;
}

int ctsr_vk_descriptor_pool(ctsr_vk *vk, uint32_t nsets, VkDescriptorPool *out, char *err,
                            size_t errlen)
{
    int ret = 0;
    VkDescriptorPoolSize ps[3] = {
        {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = nsets * CTSR_BINDINGS},
        {.type = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER,
         .descriptorCount = nsets * CTSR_TEXEL_BINDINGS},
        {.type = VK_DESCRIPTOR_TYPE_STORAGE_TEXEL_BUFFER,
         .descriptorCount = nsets * CTSR_IMAGE_BINDINGS}};
    VkDescriptorPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                      .maxSets = nsets,
                                      .poolSizeCount = 3,
                                      .pPoolSizes = ps};
    VK_CHECK(vkCreateDescriptorPool(vk->dev, &pci, NULL, out));
fail:
    return ret;
}

int ctsr_vk_submit_wait(ctsr_vk *vk, char *err, size_t errlen)
{
    int ret = 0;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
                       .commandBufferCount = 1,
                       .pCommandBuffers = &vk->cmd};
    VK_CHECK(vkResetFences(vk->dev, 1, &vk->fence));
    VK_CHECK(vkQueueSubmit(vk->queue, 1, &si, vk->fence));
    VK_CHECK(vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX));
fail:
    return ret;
}

int ctsr_vk_upload(ctsr_vk *vk, ctsr_buffer *b, const void *data, VkDeviceSize size,
                   char *err, size_t errlen)
{
    int ret = 0;
    if (b->map) {
        memcpy(b->map, data, size);
        return 0;
    }
    ctsr_buffer staging;
    if ((ret = ctsr_vk_buffer_create(vk, &staging, size, 1, err, errlen)))
        return ret;
    memcpy(staging.map, data, size);
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VK_CHECK(vkBeginCommandBuffer(vk->cmd, &bi));
    VkBufferCopy region = {.size = size};
    vkCmdCopyBuffer(vk->cmd, staging.buf, b->buf, 1, &region);
    VK_CHECK(vkEndCommandBuffer(vk->cmd));
    ret = ctsr_vk_submit_wait(vk, err, errlen);
fail:
    ctsr_vk_buffer_destroy(vk, &staging);
    return ret;
}

int ctsr_vk_pipeline(ctsr_vk *vk, const uint32_t *spv, size_t spv_bytes, const int32_t *spec,
                     int nspec, VkPipeline *out, char *err, size_t errlen)
{
    int ret = 0;
    VkShaderModule mod = VK_NULL_HANDLE;
    VkSpecializationMapEntry map[16];
    if (nspec > 16)
        nspec = 16;
    for (int i = 0; i < nspec; i++)
        map[i] = (VkSpecializationMapEntry){.constantID = (uint32_t)i,
                                            .offset = (uint32_t)(i * 4),
                                            .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = (uint32_t)nspec,
                               .pMapEntries = map,
                               .dataSize = (size_t)nspec * 4,
                               .pData = spec};
    VkShaderModuleCreateInfo mci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                    .codeSize = spv_bytes,
                                    .pCode = spv};
    VK_CHECK(vkCreateShaderModule(vk->dev, &mci, NULL, &mod));
    VkComputePipelineCreateInfo cpi = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = &si},
        .layout = vk->pipe_layout};
    VK_CHECK(vkCreateComputePipelines(vk->dev, VK_NULL_HANDLE, 1, &cpi, NULL, out));
fail:
    if (mod)
        vkDestroyShaderModule(vk->dev, mod, NULL);
    return ret;
}
