/* libctsr: timestep maps on the host (tmap.h): the region rasteriser of ctsr.h, the choice
 * of the FiLM levels and the per-pixel level positions the shaders read. */
#include "tmap.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctsr.h"

/* ---- the rasteriser (public) ---- */

/* weight of a region at distance d (input pixels) outside its rectangle: 1 inside, a
 * smoothstep down to 0 at `transition` */
static float ramp_weight(float d, float transition)
{
    if (d <= 0.0f)
        return 1.0f;
    if (d >= transition)
        return 0.0f;
    const float s = d / transition;
    return 1.0f - s * s * (3.0f - 2.0f * s);
}

static float clamp01(float t) { return t < 0.0f ? 0.0f : t > 1.0f ? 1.0f : t; }

typedef struct region_order {
    float t;
    int index;
} region_order;

/* decreasing t, then the region's index (a stable order) */
static int by_t_desc(const void *a, const void *b)
{
    const region_order *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? 1 : -1;
    return x->index - y->index;
}

int ctsr_timestep_map_fill(float *map, int w, int h, size_t stride, float base_t,
                           const ctsr_timestep_region *regions, int n, float transition,
                           char *err, size_t errlen)
{
    if (!map || w <= 0 || h <= 0 || stride < (size_t)w * sizeof(float) ||
        stride % sizeof(float) || (h > 1 && stride > SIZE_MAX / (size_t)h)) {
        ctsr_seterr(err, errlen, "timestep map: %s (%dx%d, stride %zu bytes)",
                    !map ? "NULL map" : w <= 0 || h <= 0 ? "invalid size"
                                                         : "stride not a multiple of 4 bytes "
                                                           "holding a row", w, h, stride);
        return CTSR_E_INVALID;
    }
    if (n < 0 || (n > 0 && !regions)) {
        ctsr_seterr(err, errlen, "timestep map: %d regions at %p", n, (const void *)regions);
        return CTSR_E_INVALID;
    }
    if (isnan(base_t) || !(transition >= 0.0f) || isinf(transition)) {
        ctsr_seterr(err, errlen, "timestep map: base t %g, transition %g (t must be a number, "
                    "the transition finite and >= 0)", (double)base_t, (double)transition);
        return CTSR_E_INVALID;
    }
    for (int i = 0; i < n; i++)
        if (isnan(regions[i].t)) {
            ctsr_seterr(err, errlen, "timestep map: region %d has t = NaN", i);
            return CTSR_E_INVALID;
        }
    region_order *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!order) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    const size_t sf = stride / sizeof(float);
    base_t = clamp01(base_t);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            map[(size_t)y * sf + x] = base_t;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (regions[i].w > 0 && regions[i].h > 0)
            order[m++] = (region_order){clamp01(regions[i].t), i};
    qsort(order, (size_t)m, sizeof *order, by_t_desc);
    /* regions in order of decreasing t, each blended over what is painted below it: the
     * lowest t wins where regions overlap, independently of their order, and the map is
     * continuous (each step is) */
    const int reach = (int)ceilf(transition);
    for (int k = 0; k < m; k++) {
        const ctsr_timestep_region *r = &regions[order[k].index];
        const float tr = order[k].t;
        /* the rectangle [x0, x1) x [y0, y1) in pixel units; pixel centres at i + 0.5 */
        const double x0 = r->x, y0 = r->y, x1 = (double)r->x + r->w, y1 = (double)r->y + r->h;
        const double bx0 = fmax(0.0, x0 - reach), by0 = fmax(0.0, y0 - reach);
        const double bx1 = fmin((double)w, x1 + reach), by1 = fmin((double)h, y1 + reach);
        for (int y = (int)by0; y < (int)by1; y++) {
            const double cy = y + 0.5, dy = cy < y0 ? y0 - cy : cy > y1 ? cy - y1 : 0.0;
            for (int x = (int)bx0; x < (int)bx1; x++) {
                const double cx = x + 0.5, dx = cx < x0 ? x0 - cx : cx > x1 ? cx - x1 : 0.0;
                const float wgt = ramp_weight((float)sqrt(dx * dx + dy * dy), transition);
                float *p = &map[(size_t)y * sf + x];
                if (wgt >= 1.0f)
                    *p = tr; /* exactly the region's t inside it */
                else if (wgt > 0.0f)
                    *p = *p * (1.0f - wgt) + tr * wgt;
            }
        }
    }
    free(order);
    return 0;
}

/* ---- exact levels ---- */

typedef struct level_count {
    uint32_t bits; /* the value's bits; 0xffffffff: empty slot (never a value in [0, 1]) */
    size_t count;
} level_count;

static uint32_t float_bits(float v)
{
    uint32_t b;
    if (v == 0.0f)
        v = 0.0f; /* -0 counts as 0 */
    memcpy(&b, &v, 4);
    return b;
}

static size_t hash_bits(uint32_t b, size_t cap)
{
    b ^= b >> 16; /* lowbias32: every bit of the value reaches the low bits */
    b *= 0x7feb352du;
    b ^= b >> 15;
    b *= 0x846ca68bu;
    b ^= b >> 16;
    return b & (cap - 1);
}

static float bits_float(uint32_t b)
{
    float v;
    memcpy(&v, &b, 4);
    return v;
}

/* more blocks first, then the smaller value (non-negative floats: bit order) */
static int by_count_desc(const void *a, const void *b)
{
    const level_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return x->bits < y->bits ? -1 : x->bits > y->bits;
}

static int by_value(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* adds `count` to value v's entry of the hash set tab (cap slots, *used entries);
 * 0 or CTSR_E_NOMEM */
static int count_value(level_count **tabp, size_t *capp, size_t *used, float v, size_t count)
{
    level_count *tab = *tabp;
    size_t cap = *capp;
    const uint32_t b = float_bits(v);
    size_t s = hash_bits(b, cap);
    while (tab[s].bits != b && tab[s].bits != 0xffffffffu)
        s = (s + 1) & (cap - 1);
    if (tab[s].bits == b) {
        tab[s].count += count;
        return 0;
    }
    tab[s] = (level_count){b, count};
    if (++*used * 2 <= cap)
        return 0;
    level_count *nt = malloc(2 * cap * sizeof *nt); /* grow: rehash into twice the slots */
    if (!nt)
        return CTSR_E_NOMEM;
    memset(nt, 0xff, 2 * cap * sizeof *nt);
    for (size_t j = 0; j < cap; j++) {
        if (tab[j].bits == 0xffffffffu)
            continue;
        size_t t = hash_bits(tab[j].bits, 2 * cap);
        while (nt[t].bits != 0xffffffffu)
            t = (t + 1) & (2 * cap - 1);
        nt[t] = tab[j];
    }
    free(tab);
    *tabp = nt;
    *capp = 2 * cap;
    return 0;
}

int ctsr_tmap_levels(const float *map, int w, int h, float *levels)
{
    /* the flat values with the number of 2x2 blocks they fill (an open-addressing hash set;
     * runs of flat blocks of one value, the common case, cost a few compares per pixel) */
    size_t cap = 64, used = 0;
    level_count *tab = malloc(cap * sizeof *tab);
    if (!tab)
        return CTSR_E_NOMEM;
    memset(tab, 0xff, cap * sizeof *tab);
    float lo = map[0], hi = map[0];
    for (size_t i = 1; i < (size_t)w * h; i++) {
        lo = map[i] < lo ? map[i] : lo;
        hi = map[i] > hi ? map[i] : hi;
    }
    /* blocks of 2 x 2, or of 2 x 1 / 1 x 2 in a map one pixel high or wide */
    const int bw = w > 1 ? 2 : 1, bh = h > 1 ? 2 : 1;
    for (int y = 0; y + bh <= h; y++) {
        const float *r0 = map + (size_t)y * w, *r1 = map + (size_t)(y + bh - 1) * w;
        float run_v = 0.0f;
        size_t run = 0;
        for (int x = 0; x + bw <= w; x++) {
            const float v = r0[x];
            const int flat = r0[x + bw - 1] == v && r1[x] == v && r1[x + bw - 1] == v;
            if (run && (!flat || v != run_v)) {
                if (count_value(&tab, &cap, &used, run_v, run)) {
                    free(tab);
                    return CTSR_E_NOMEM;
                }
                run = 0;
            }
            if (flat) {
                run_v = v;
                run++;
            }
        }
        if (run && count_value(&tab, &cap, &used, run_v, run)) {
            free(tab);
            return CTSR_E_NOMEM;
        }
    }
    /* the range's ends, then the flat values filling the most blocks */
    size_t k = 0;
    for (size_t j = 0; j < cap; j++)
        if (tab[j].bits != 0xffffffffu)
            tab[k++] = tab[j];
    qsort(tab, k, sizeof *tab, by_count_desc);
    int nl = 0;
    levels[nl++] = lo;
    if (hi != lo)
        levels[nl++] = hi;
    for (size_t j = 0; j < k && nl < CTSR_TMAP_LEVELS; j++) {
        const float v = bits_float(tab[j].bits);
        if (v != lo && v != hi)
            levels[nl++] = v;
    }
    free(tab);
    qsort(levels, (size_t)nl, sizeof *levels, by_value);
    return nl;
}

void ctsr_tmap_positions(const float *map, size_t n, const float *levels, int nlevels,
                         float *u)
{
    float last_v = -1.0f, last_u = 0.0f;
    for (size_t i = 0; i < n; i++) {
        const float v = map[i];
        if (v == last_v) {
            u[i] = last_u;
            continue;
        }
        int lo = 0, hi = nlevels; /* the first level >= v */
        while (lo < hi) {
            const int mid = (lo + hi) / 2;
            if (levels[mid] < v)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo >= nlevels) /* above the last level (not for the map's own levels) */
            u[i] = (float)(nlevels - 1);
        else if (levels[lo] == v || lo == 0)
            u[i] = (float)lo;
        else {
            /* between levels lo - 1 and lo; f < 1 in float (a value just below a level) */
            float f = (v - levels[lo - 1]) / (levels[lo] - levels[lo - 1]);
            if (!(f < 1.0f))
                f = nextafterf(1.0f, 0.0f);
            u[i] = (float)(lo - 1) + f;
            if (!(u[i] < (float)lo)) /* rounding of k + f for large k */
                u[i] = nextafterf((float)lo, 0.0f);
        }
        last_v = v;
        last_u = u[i];
    }
}
