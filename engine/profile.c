/* libctsr: profiling (ctsr_set_profiling): a timestamp after every dispatch of a frame,
 * summed per operator kind. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void ctsr_profile_mark(ctsr_context *ctx, int kind)
{
    if (!ctx->profiling || ctx->query_count >= ctx->query_cap)
        return;
    ctx->query_kind[ctx->query_count] = (uint8_t)kind;
    vkCmdWriteTimestamp(ctx->vk.cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, ctx->queries,
                        ctx->query_count++);
}


int ctsr_profile_reserve(ctsr_context *ctx, uint32_t n, char *err, size_t errlen)
{
    int ret = 0;
    if (n <= ctx->query_cap)
        return 0;
    if (ctx->queries)
        vkDestroyQueryPool(ctx->vk.dev, ctx->queries, NULL);
    ctx->queries = VK_NULL_HANDLE;
    ctx->query_cap = 0;
    uint8_t *k = realloc(ctx->query_kind, n);
    if (!k) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    ctx->query_kind = k;
    VkQueryPoolCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
                                .queryType = VK_QUERY_TYPE_TIMESTAMP,
                                .queryCount = n};
    VK_CHECK(vkCreateQueryPool(ctx->vk.dev, &qi, NULL, &ctx->queries));
    ctx->query_cap = n;
fail:
    return ret;
}

int ctsr_profile_read(ctsr_context *ctx, int ntiles, char *err, size_t errlen)
{
    int ret = 0;
    const uint32_t n = ctx->query_count;
    uint64_t *ts = calloc(n ? n : 1, sizeof *ts);
    if (!ts) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    VK_CHECK(vkGetQueryPoolResults(ctx->vk.dev, ctx->queries, 0, n, n * sizeof *ts, ts,
                                   sizeof *ts, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT));
    const double ns = ctx->vk.props.limits.timestampPeriod * 1e-6; /* ticks -> ms */
    ctsr_profile *p = &ctx->profile;
    memset(p, 0, sizeof *p);
    for (uint32_t i = 1; i < n; i++) {
        double ms = (double)(ts[i] - ts[i - 1]) * ns;
        switch (ctx->query_kind[i]) {
        case K_CONV: p->conv_ms += ms; break;
        case K_WATTN: p->attn_ms += ms; break;
        case K_LN: p->norm_ms += ms; break;
        default: p->io_ms += ms; break;
        }
    }
    p->total_ms = n > 1 ? (double)(ts[n - 1] - ts[0]) * ns : 0.0;
    p->conv_macs = ctx->frame_conv_macs;
    p->tiles = ntiles;
fail:
    free(ts);
    return ret;
}

int ctsr_set_profiling(ctsr_context *ctx, int on, char *err, size_t errlen)
{
    if (on && (!ctx->vk.props.limits.timestampComputeAndGraphics ||
               ctx->vk.props.limits.timestampPeriod <= 0)) {
        ctsr_seterr(err, errlen, "%s has no compute timestamps", ctx->device_name);
        return CTSR_E_INVALID;
    }
    ctx->profiling = on != 0;
    return 0;
}

int ctsr_get_profile(const ctsr_context *ctx, ctsr_profile *p)
{
    *p = ctx->profile;
    return ctx->profiling ? 0 : CTSR_E_INVALID;
}

