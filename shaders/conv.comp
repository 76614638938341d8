#version 450
// KS x KS convolution (KS = 1 or 3, zero padding, stride 1), NHWC vec4 activations.
// One invocation computes 4 neighbouring pixels of one row for a group of OCW (8, 12 or 16:
// ctsr_conv_ocw in engine/internal.h) output channels: 4 * OCW accumulators in registers,
// each input vec4 reused for OCW channels and (KS = 3) 3 taps. Weights are uniform across the lanes of a subgroup
// (all lanes share the channel group and row): each lane loads one of the first 8 weight
// texels (and, OCW > 8, one of the others) and subgroupShuffle hands them to all lanes,
// which on lavapipe compiles to permutes instead of per-lane scalar loads.
//
// Weight layout (floats): [ocg][ky][kx][ic / 4][oc % OCW][ic % 4], bias [ocg*OCW + j].
// MODE (CTSR_CONV_* in ctsr-abi.h):
// MODE 0: out = act(conv + bias)
// MODE 1: out = out + (conv + bias) * (1 + gamma) + beta     (FiLM, residual, in place)
// MODE 2: out = out + conv + bias                              (residual, in place)
// MODE 3: MODE 1 with gamma, beta per pixel (timestep map, engine/tmap.h): the pixel's level
//         position u (film[moff + frame row * mstride + frame column], the frame position of
//         region pixel (x, y) being (rx + x, ry + y)) picks level floor(u) of a table of FiLM
//         vectors (level l at float foff + l * lstride of binding 3, read as vec4 texels of
//         binding 6: both multiples of 4), interpolated linearly towards level floor(u) + 1
//         by u - floor(u) when that is > 0
// MODE 4: out = act(rstd * (conv - mean * wsum) + bias)   (KS = 1: LayerNorm + 1x1 conv)
//         with the weights, bias and wsum (the weights' sums per output channel, the block
//         after the bias) packed by ctsr_pack_conv_ln, and each pixel's mean and
//         rstd = 1 / sqrt(var + eps) over its CIN4 * 4 input channels
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#extension GL_KHR_shader_subgroup_shuffle : enable
#extension GL_KHR_shader_subgroup_basic : enable

layout(local_size_x_id = CTSR_SPEC_WG, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = CTSR_SPEC_CONV_CIN4) const int CIN4 = 8;      // input channels / 4 (padded)
layout(constant_id = CTSR_SPEC_CONV_COUT4) const int COUT4 = 8;     // output channels / 4 (padded), output stride
layout(constant_id = CTSR_SPEC_CONV_KS) const int KS_UNUSED = 0; // KS is a compile-time define (-DKS=1|3)
layout(constant_id = CTSR_SPEC_CONV_ACT) const int ACT = 0;
layout(constant_id = CTSR_SPEC_CONV_MODE) const int MODE = 0;
layout(constant_id = CTSR_SPEC_CONV_OCW) const int OCW = 8;        // output channels per invocation

// The input, and the output's previous values (MODE 1-3), read as vec4 texels: binding 0's and
// binding 1's memory through storage texel views (RGBA32F, or RGBA16F with fp16 storage). On
// lavapipe imageLoad is an inline gather, cheaper than texelFetch (a call into a helper, live
// registers spilled around it) and much cheaper than scalarised SSBO loads.
#if CTSR_FP16
layout(binding = CTSR_BINDING_IN_IMAGE, rgba16f) uniform readonly imageBuffer xin;
layout(binding = CTSR_BINDING_OUT_IMAGE, rgba16f) uniform readonly imageBuffer yold;
#else
layout(binding = CTSR_BINDING_IN_IMAGE, rgba32f) uniform readonly imageBuffer xin;
layout(binding = CTSR_BINDING_OUT_IMAGE, rgba32f) uniform readonly imageBuffer yold;
#endif
// the weights and biases as RGBA32F texels (binding 2's memory)
layout(binding = CTSR_BINDING_WEIGHT_TEXELS) uniform samplerBuffer wtex;
layout(std430, binding = CTSR_BINDING_OUT) buffer Out { ACT_T y[]; };
layout(std430, binding = CTSR_BINDING_FILM) readonly buffer Film { float film[]; };
// binding 3's FiLM vectors as RGBA32F texels (MODE 1 reads its gamma and beta through it,
// MODE 3 its table); binding 3 itself: MODE 3's level positions
layout(binding = CTSR_BINDING_FILM_TEXELS) uniform samplerBuffer filmtex;

layout(push_constant) uniform PC {
    CTSR_PC_CONV // region size; weight, bias, FiLM offsets; MODE 3: lstride, moff, mstride, rx, ry
} pc;

const int PX = 4;
const int R = KS / 2;

// Weights of (ocg, ky, kx, c4) are OCW texels: texel l holds output channel ocg*OCW + l for the
// 4 input channels of c4. Each lane fetches one texel (two for OCW > 8: l and 8 + l % (OCW - 8));
// subgroupShuffle with a constant lane hands them to every lane (on lavapipe a permute; on
// GPUs the lanes of a subgroup share ocg and row).
// The weight texels of a row's 3 taps are fetched together, before the arithmetic: on lavapipe
// texelFetch is a call around which the accumulators are spilled, then once per group.
#if SHUFFLE_OK
#define WFETCH(wl, wt4)                                                                        \
    const vec4 wl = texelFetch(wtex, (wt4) + int(sglane));                                     \
    const vec4 wl##_hi = OCW > 8 ? texelFetch(wtex, (wt4) + 8 + int(sglane & (OCW == 16 ? 7u : 3u))) : vec4(0.0)
#define WLOAD(wl, wt4, lane, comp) subgroupShuffle(wl.comp, lane)
#define WLOAD_HI(wl, wt4, lane, comp) subgroupShuffle(wl##_hi.comp, lane)
#else
#define WFETCH(wl, wt4)
#define WLOAD(wl, wt4, lane, comp) texelFetch(wtex, (wt4) + (lane)).comp
#define WLOAD_HI(wl, wt4, lane, comp) texelFetch(wtex, (wt4) + 8 + (lane)).comp
#endif
// one input channel `comp` of the 4 pixels VA..VD against OCW output channels
#define STEP(wl, wt4, comp, VA, VB, VC, VD)                                                    \
    {                                                                                          \
        const vec4 w0 = vec4(WLOAD(wl, wt4, 0, comp), WLOAD(wl, wt4, 1, comp),                 \
                             WLOAD(wl, wt4, 2, comp), WLOAD(wl, wt4, 3, comp));                \
        const vec4 w1 = vec4(WLOAD(wl, wt4, 4, comp), WLOAD(wl, wt4, 5, comp),                 \
                             WLOAD(wl, wt4, 6, comp), WLOAD(wl, wt4, 7, comp));                \
        a00 += VA.comp * w0; a01 += VA.comp * w1;                                              \
        a10 += VB.comp * w0; a11 += VB.comp * w1;                                              \
        a20 += VC.comp * w0; a21 += VC.comp * w1;                                              \
        a30 += VD.comp * w0; a31 += VD.comp * w1;                                              \
        if (OCW > 8) {                                                                         \
            const vec4 w2 = vec4(WLOAD_HI(wl, wt4, 0, comp), WLOAD_HI(wl, wt4, 1, comp),       \
                                 WLOAD_HI(wl, wt4, 2, comp), WLOAD_HI(wl, wt4, 3, comp));      \
            a02 += VA.comp * w2; a12 += VB.comp * w2;                                          \
            a22 += VC.comp * w2; a32 += VD.comp * w2;                                          \
        }                                                                                      \
        if (OCW > 12) {                                                                        \
            const vec4 w3 = vec4(WLOAD_HI(wl, wt4, 4, comp), WLOAD_HI(wl, wt4, 5, comp),       \
                                 WLOAD_HI(wl, wt4, 6, comp), WLOAD_HI(wl, wt4, 7, comp));      \
            a03 += VA.comp * w3; a13 += VB.comp * w3;                                          \
            a23 += VC.comp * w3; a33 += VD.comp * w3;                                          \
        }                                                                                      \
    }
// the 4 input channels of one tap (weights wl, fetched with WFETCH)
#define TAP(wl, wt4, VA, VB, VC, VD)                                                           \
    {                                                                                          \
        STEP(wl, wt4, x, VA, VB, VC, VD)                                                       \
        STEP(wl, wt4, y, VA, VB, VC, VD)                                                       \
        STEP(wl, wt4, z, VA, VB, VC, VD)                                                       \
        STEP(wl, wt4, w, VA, VB, VC, VD)                                                       \
    }

// MODE 1 and 3: gamma and beta of output channels oc4 at offset `lo` (floats, a multiple of 4:
// one texel per vec4), moved towards the next level by f when f > 0 (MODE 3)
void film_at(int lo, float f, int oc4, out vec4 g, out vec4 b)
{
    const int fo = lo / 4 + oc4, fb = fo + COUT4;
    g = texelFetch(filmtex, fo);
    b = texelFetch(filmtex, fb);
    if (f > 0.0) {
        const int st = pc.lstride / 4;
        g += f * (texelFetch(filmtex, fo + st) - g);
        b += f * (texelFetch(filmtex, fb + st) - b);
    }
}

vec4 ld(int rowbase, bool rowok, int sx, int c4)
{
    const bool ok = rowok && sx >= 0 && sx < pc.width;
    return imageLoad(xin, (rowbase + clamp(sx, 0, pc.width - 1)) * CIN4 + c4) * (ok ? 1.0 : 0.0);
}

void main()
{
    const int x0 = int(gl_GlobalInvocationID.x) * PX;
    const int yy = int(gl_GlobalInvocationID.y);
    const int ocg = int(gl_GlobalInvocationID.z);
#if SHUFFLE_OK
    const uint sglane = gl_SubgroupInvocationID & 7u;
#endif
    // Out-of-range lanes still run the loop (their loads are clamped) so that every lane
    // of a subgroup takes part in the shuffles; only their stores are skipped.
    vec4 a00 = vec4(0.0), a01 = vec4(0.0), a10 = vec4(0.0), a11 = vec4(0.0);
    vec4 a20 = vec4(0.0), a21 = vec4(0.0), a30 = vec4(0.0), a31 = vec4(0.0);
    vec4 a02 = vec4(0.0), a12 = vec4(0.0), a22 = vec4(0.0), a32 = vec4(0.0); // OCW >= 12
    vec4 a03 = vec4(0.0), a13 = vec4(0.0), a23 = vec4(0.0), a33 = vec4(0.0); // OCW = 16
    vec4 lsum = vec4(0.0), lsq = vec4(0.0); // MODE 4: sums of the 4 pixels' inputs, squares
    for (int ky = 0; ky < KS; ky++) {
        const int sy = yy + ky - R;
        const bool rowok = sy >= 0 && sy < pc.height;
        const int rowbase = clamp(sy, 0, pc.height - 1) * pc.width;
        for (int c4 = 0; c4 < CIN4; c4++) {
            // texel of (ocg, ky, kx, c4, oc 0) at wb + kx * CIN4 * OCW
            const int wb = pc.woff / 4 + ((ocg * KS + ky) * KS * CIN4 + c4) * OCW;
#if KS == 3
            const vec4 v0 = ld(rowbase, rowok, x0 - 1, c4), v1 = ld(rowbase, rowok, x0, c4);
            const vec4 v2 = ld(rowbase, rowok, x0 + 1, c4), v3 = ld(rowbase, rowok, x0 + 2, c4);
            const vec4 v4 = ld(rowbase, rowok, x0 + 3, c4), v5 = ld(rowbase, rowok, x0 + 4, c4);
            WFETCH(wl0, wb);
            WFETCH(wl1, wb + CIN4 * OCW);
            WFETCH(wl2, wb + 2 * CIN4 * OCW);
            TAP(wl0, wb, v0, v1, v2, v3)
            TAP(wl1, wb + CIN4 * OCW, v1, v2, v3, v4)
            TAP(wl2, wb + 2 * CIN4 * OCW, v2, v3, v4, v5)
#else
            const vec4 v0 = ld(rowbase, rowok, x0, c4), v1 = ld(rowbase, rowok, x0 + 1, c4);
            const vec4 v2 = ld(rowbase, rowok, x0 + 2, c4), v3 = ld(rowbase, rowok, x0 + 3, c4);
            WFETCH(wl0, wb);
            TAP(wl0, wb, v0, v1, v2, v3)
            if (MODE == 4) {
                const vec4 one = vec4(1.0);
                lsum += vec4(dot(v0, one), dot(v1, one), dot(v2, one), dot(v3, one));
                lsq += vec4(dot(v0, v0), dot(v1, v1), dot(v2, v2), dot(v3, v3));
            }
#endif
        }
    }
    vec4 acc[PX][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23},
                       {a30, a31, a32, a33}};
    if (yy >= pc.height)
        return;
#if KS == 3
    // MODE 3: each pixel's level, interpolation weight and row offset of its FiLM vectors
    // (the 4 pixels of an invocation usually share their position: one lookup then)
    int lo[PX];
    float lf[PX];
    bool same = true;
    if (MODE == 3) {
        float u[PX];
        for (int p = 0; p < PX; p++) {
            const int xx = min(x0 + p, pc.width - 1);
            u[p] = film[pc.moff + (pc.ry + yy) * pc.mstride + pc.rx + xx];
            const int l = int(u[p]);
            lo[p] = pc.foff + l * pc.lstride;
            lf[p] = u[p] - float(l);
        }
        same = u[0] == u[1] && u[0] == u[2] && u[0] == u[3];
    }
#endif
    // MODE 4: each pixel's mean and 1 / sqrt(var + eps) (biased variance, as LayerNorm)
    const vec4 lmean = lsum / float(CIN4 * 4);
    const vec4 lrstd =
        inversesqrt(max(lsq / float(CIN4 * 4) - lmean * lmean, vec4(0.0)) + CTSR_LN_EPS);
    for (int j = 0; j < OCW / 4; j++) {
        const int oc4 = ocg * (OCW / 4) + j;
        if (oc4 >= COUT4)
            break;
        const int ob = pc.boff + oc4 * 4;
        const vec4 bias = texelFetch(wtex, ob / 4); // ob: a multiple of 4 (16-byte blocks)
        vec4 g = vec4(0.0), b = vec4(0.0), wsum = vec4(0.0);
        if (MODE == 4) // the weights' sums: after the bias's groups of OCW / 4 texels
            wsum = texelFetch(wtex, ob / 4 + (COUT4 * 4 + OCW - 1) / OCW * (OCW / 4));
        if (MODE == 1)
            film_at(pc.foff, 0.0, oc4, g, b); // as texels: foff is a multiple of 4
#if KS == 3
        if (MODE == 3) {
            if (same) {
                film_at(lo[0], lf[0], oc4, g, b); // then as MODE 1, below
            } else {
                for (int p = 0; p < PX; p++) {
                    const int xx = x0 + p;
                    if (xx >= pc.width)
                        break;
                    const int o = (yy * pc.width + xx) * COUT4 + oc4;
                    vec4 gp, bp;
                    film_at(lo[p], lf[p], oc4, gp, bp);
                    y[o] = TO_ACT(imageLoad(yold, o) + (acc[p][j] + bias) * (1.0 + gp) + bp);
                }
                continue;
            }
        }
#endif
        for (int p = 0; p < PX; p++) {
            const int xx = x0 + p;
            if (xx >= pc.width)
                break;
            const int o = (yy * pc.width + xx) * COUT4 + oc4;
            vec4 r = acc[p][j] + bias;
            if (MODE == 4)
                r = activate(lrstd[p] * (acc[p][j] - lmean[p] * wsum) + bias, ACT);
            else if (MODE == 0)
                r = activate(r, ACT);
            else if (MODE == 1 || MODE == 3)
                r = imageLoad(yold, o) + r * (1.0 + g) + b;
            else
                r = imageLoad(yold, o) + r;
            y[o] = TO_ACT(r);
        }
    }
}
