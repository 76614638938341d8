/* Model loading: valid files (F32, F16), every kind of malformed file, the config rules,
 * macs_per_pixel, the timestep MLP, and the golden models of training/ctsr/golden.py. */
#include "ctsr.h"
#include "model.h"
#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>


/* ---- an independent little safetensors writer ---- */

typedef struct ttensor {
    char name[64];
    char dtype[16];
    int rank;
    long long shape[4];
    size_t count;
    float *vals;     /* the float value the loader must produce */
    uint16_t *half;  /* raw F16 bits when dtype is F16 */
    int omit;        /* leave out of the file */
    long long off_delta; /* added to the end offset in the header only */
} ttensor;

typedef struct tmodel {
    ttensor t[256];
    int n;
    char config[1024];
    char meta[4096]; /* the whole __metadata__ JSON object; built from config if empty */
    const char *extra_entry; /* raw JSON text "name": {...} appended to the header */
} tmodel;

/* the tiny test config */
typedef struct tcfg {
    int scale, channels, blocks, window, heads, mlp_ratio, temb_dim, temb_hidden;
    const char *act;
    int attn[4], n_attn;
    double temb_scale;
} tcfg;

static const tcfg TINY = {2, 8, 2, 4, 2, 2, 8, 16, "lrelu", {1}, 1, 100.0};

static void cfg_json(const tcfg *c, char *buf, size_t n)
{
    char attn[64] = "";
    size_t o = 0;
    for (int i = 0; i < c->n_attn; i++)
        o += (size_t)snprintf(attn + o, sizeof attn - o, "%s%d", i ? ", " : "", c->attn[i]);
    snprintf(buf, n,
             "{\"act\": \"%s\", \"attn_blocks\": [%s], \"blocks\": %d, \"channels\": %d, "
             "\"heads\": %d, \"mlp_ratio\": %d, \"scale\": %d, \"temb_dim\": %d, "
             "\"temb_hidden\": %d, \"temb_scale\": %.1f, \"window\": %d}",
             c->act, attn, c->blocks, c->channels, c->heads, c->mlp_ratio, c->scale,
             c->temb_dim, c->temb_hidden, c->temb_scale, c->window);
}

/* value of an IEEE half, written independently of the loader's bit manipulation */
static float half_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v;
    if (e == 0)
        v = ldexp(m, -24);
    else if (e == 31)
        v = m ? NAN : INFINITY;
    else
        v = ldexp(1024 + m, e - 25);
    return (float)(s ? -v : v);
}

static void add(tmodel *tm, const char *name, int rank, long long d0, long long d1,
                long long d2, long long d3)
{
    ttensor *t = &tm->t[tm->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(t->dtype, sizeof t->dtype, "F32");
    long long d[4] = {d0, d1, d2, d3};
    t->rank = rank;
    t->count = 1;
    for (int i = 0; i < rank; i++)
        t->shape[i] = d[i], t->count *= (size_t)d[i];
}

static void add_layer(tmodel *tm, const char *p, int cout, int cin, int k)
{
    char n[64];
    snprintf(n, sizeof n, "%s.weight", p);
    if (k)
        add(tm, n, 4, cout, cin, k, k);
    else
        add(tm, n, 2, cout, cin, 0, 0);
    snprintf(n, sizeof n, "%s.bias", p);
    add(tm, n, 1, cout, 0, 0, 0);
}

static void tm_free(tmodel *tm)
{
    for (int i = 0; i < tm->n; i++) {
        free(tm->t[i].vals);
        free(tm->t[i].half);
    }
    tm->n = 0;
}

/* All tensors of config c with random values; f16 stores them as F16. */
static void tm_build(tmodel *tm, const tcfg *c, int f16, uint32_t seed)
{
    memset(tm, 0, sizeof *tm);
    cfg_json(c, tm->config, sizeof tm->config);
    int C = c->channels, M = c->temb_hidden, hC = c->mlp_ratio * C, s = c->scale;
    char p[64], n[64];
    add_layer(tm, "temb.fc1", M, c->temb_dim, 0);
    add_layer(tm, "temb.fc2", M, M, 0);
    add_layer(tm, "head", C, 3, 3);
    add_layer(tm, "tail", 3 * s * s, C, 3);
    for (int b = 0; b < c->blocks; b++) {
        snprintf(p, sizeof p, "blocks.%d.conv1", b), add_layer(tm, p, C, C, 3);
        snprintf(p, sizeof p, "blocks.%d.conv2", b), add_layer(tm, p, C, C, 3);
        snprintf(p, sizeof p, "blocks.%d.film", b), add_layer(tm, p, 2 * C, M, 0);
        int attn = 0;
        for (int i = 0; i < c->n_attn; i++)
            attn |= c->attn[i] == b;
        if (!attn)
            continue;
        snprintf(n, sizeof n, "blocks.%d.attn.norm1.weight", b), add(tm, n, 1, C, 0, 0, 0);
        snprintf(n, sizeof n, "blocks.%d.attn.norm1.bias", b), add(tm, n, 1, C, 0, 0, 0);
        snprintf(p, sizeof p, "blocks.%d.attn.qkv", b), add_layer(tm, p, 3 * C, C, 1);
        snprintf(p, sizeof p, "blocks.%d.attn.proj", b), add_layer(tm, p, C, C, 1);
        snprintf(n, sizeof n, "blocks.%d.attn.norm2.weight", b), add(tm, n, 1, C, 0, 0, 0);
        snprintf(n, sizeof n, "blocks.%d.attn.norm2.bias", b), add(tm, n, 1, C, 0, 0, 0);
        snprintf(p, sizeof p, "blocks.%d.attn.mlp1", b), add_layer(tm, p, hC, C, 1);
        snprintf(p, sizeof p, "blocks.%d.attn.mlp2", b), add_layer(tm, p, C, hC, 1);
    }
    for (int i = 0; i < tm->n; i++) {
        ttensor *t = &tm->t[i];
        t->vals = malloc(t->count * sizeof *t->vals);
        if (f16) {
            snprintf(t->dtype, sizeof t->dtype, "F16");
            t->half = malloc(t->count * sizeof *t->half);
            for (size_t j = 0; j < t->count; j++) {
                seed = seed * 1664525u + 1013904223u;
                /* sign, exponent 8..15 (|x| in [2^-7, 2)), any mantissa */
                uint16_t h = (uint16_t)(((seed >> 31) << 15) | ((8 + ((seed >> 20) & 7)) << 10) |
                                        ((seed >> 8) & 1023));
                t->half[j] = h;
                t->vals[j] = half_value(h);
            }
        } else {
            tu_rand_fill(t->vals, t->count, -0.5f, 0.5f, &seed);
        }
    }
}

static ttensor *tm_find(tmodel *tm, const char *name)
{
    for (int i = 0; i < tm->n; i++)
        if (!strcmp(tm->t[i].name, name))
            return &tm->t[i];
    return NULL;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Serialises to a malloc'ed safetensors image. */
static uint8_t *tm_write(const tmodel *tm, size_t *size)
{
    size_t hcap = 65536, hl = 0, dl = 0;
    char *hdr = malloc(hcap);
    if (tm->meta[0])
        hl += (size_t)snprintf(hdr + hl, hcap - hl, "{\"__metadata__\": %s", tm->meta);
    else {
        /* the config string, JSON-escaped */
        char esc[2048];
        size_t e = 0;
        for (const char *c = tm->config; *c && e + 2 < sizeof esc; c++) {
            if (*c == '"' || *c == '\\')
                esc[e++] = '\\';
            esc[e++] = *c;
        }
        esc[e] = 0;
        hl += (size_t)snprintf(hdr + hl, hcap - hl,
                               "{\"__metadata__\": {\"format\": \"ctsr-student\", "
                               "\"format_version\": \"1\", \"config\": \"%s\", "
                               "\"provenance\": \"{\\\"name\\\": \\\"unit-test\\\"}\"}",
                               esc);
    }
    for (int i = 0; i < tm->n; i++) {
        const ttensor *t = &tm->t[i];
        if (t->omit)
            continue;
        size_t bytes = t->count * (t->half ? 2 : 4);
        hl += (size_t)snprintf(hdr + hl, hcap - hl, ", \"%s\": {\"dtype\": \"%s\", \"shape\": [",
                               t->name, t->dtype);
        for (int j = 0; j < t->rank; j++)
            hl += (size_t)snprintf(hdr + hl, hcap - hl, "%s%lld", j ? ", " : "", t->shape[j]);
        hl += (size_t)snprintf(hdr + hl, hcap - hl, "], \"data_offsets\": [%zu, %lld]}", dl,
                               (long long)(dl + bytes) + t->off_delta);
        dl += bytes;
    }
    if (tm->extra_entry)
        hl += (size_t)snprintf(hdr + hl, hcap - hl, ", %s", tm->extra_entry);
    hl += (size_t)snprintf(hdr + hl, hcap - hl, "}");
    while (hl % 8)
        hdr[hl++] = ' ';
    *size = 8 + hl + dl;
    uint8_t *out = malloc(*size);
    put_le(out, hl, 8);
    memcpy(out + 8, hdr, hl);
    uint8_t *d = out + 8 + hl;
    for (int i = 0; i < tm->n; i++) {
        const ttensor *t = &tm->t[i];
        if (t->omit)
            continue;
        for (size_t j = 0; j < t->count; j++) {
            if (t->half) {
                put_le(d, t->half[j], 2);
                d += 2;
            } else {
                uint32_t bits;
                memcpy(&bits, &t->vals[j], 4);
                put_le(d, bits, 4);
                d += 4;
            }
        }
    }
    free(hdr);
    return out;
}

/* raw file: 8-byte length + header text (+ nothing) */
static uint8_t *raw_file(const char *header, uint64_t claimed_len, size_t *size)
{
    size_t hl = strlen(header);
    *size = 8 + hl;
    uint8_t *out = malloc(*size);
    put_le(out, claimed_len, 8);
    memcpy(out + 8, header, hl);
    return out;
}

/* ---- helpers on the loaded model ---- */

static const float *model_tensor(const ctsr_model *m, const char *name)
{
    char n[64];
    const ctsr_layer *layers[4] = {&m->fc1, &m->fc2, &m->head, &m->tail};
    const char *lnames[4] = {"temb.fc1", "temb.fc2", "head", "tail"};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.weight", lnames[i]);
        if (!strcmp(n, name))
            return layers[i]->w;
        snprintf(n, sizeof n, "%s.bias", lnames[i]);
        if (!strcmp(n, name))
            return layers[i]->b;
    }
    for (int b = 0; b < m->cfg.blocks; b++) {
        const ctsr_block *blk = &m->blocks[b];
        const ctsr_layer *bl[6] = {&blk->conv1, &blk->conv2, &blk->film,
                                   &blk->qkv,   &blk->proj,  &blk->mlp1};
        const char *bn[6] = {"conv1", "conv2", "film", "attn.qkv", "attn.proj", "attn.mlp1"};
        for (int i = 0; i < 6; i++) {
            snprintf(n, sizeof n, "blocks.%d.%s.weight", b, bn[i]);
            if (!strcmp(n, name))
                return bl[i]->w;
            snprintf(n, sizeof n, "blocks.%d.%s.bias", b, bn[i]);
            if (!strcmp(n, name))
                return bl[i]->b;
        }
        snprintf(n, sizeof n, "blocks.%d.attn.mlp2.weight", b);
        if (!strcmp(n, name))
            return blk->mlp2.w;
        snprintf(n, sizeof n, "blocks.%d.attn.mlp2.bias", b);
        if (!strcmp(n, name))
            return blk->mlp2.b;
        const float *lp[4] = {blk->ln1_w, blk->ln1_b, blk->ln2_w, blk->ln2_b};
        const char *ln[4] = {"norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"};
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "blocks.%d.attn.%s", b, ln[i]);
            if (!strcmp(n, name))
                return lp[i];
        }
    }
    return NULL;
}

static int pointer_in_storage(const ctsr_model *m, const float *p, size_t n)
{
    return p && p >= m->storage && p + n <= m->storage + m->n_params;
}

/* names of the codes (ctsr_strerror lives in the Vulkan part of the library) */
static const char *code_name(int rc)
{
    switch (rc) {
    case CTSR_OK: return "OK";
    case CTSR_E_INVALID: return "E_INVALID";
    case CTSR_E_NOMEM: return "E_NOMEM";
    case CTSR_E_IO: return "E_IO";
    case CTSR_E_FORMAT: return "E_FORMAT";
    default: return "other";
    }
}

/* Loads from memory and expects failure with code and a message containing word. */
static void expect_fail(const char *label, const uint8_t *data, size_t size, int code,
                        const char *word)
{
    char err[512];
    memset(err, 'x', sizeof err);
    ctsr_model *m = (ctsr_model *)1;
    int rc = ctsr_model_load_memory(data, size, &m, err, sizeof err);
    TU_EXPECT(rc == code, "%s: rc %d (%s), expected %d (%s); message: %s", label, rc,
          code_name(rc), code, code_name(code), err);
    TU_EXPECT(m == NULL, "%s: model pointer not cleared on failure", label);
    TU_EXPECT(memchr(err, 0, sizeof err) != NULL, "%s: message not NUL-terminated", label);
    TU_EXPECT(strstr(err, word) != NULL, "%s: message \"%s\" lacks \"%s\"", label, err, word);
    printf("  %-28s -> %s\n", label, err);
    if (rc == 0)
        ctsr_model_free(m);
}
static ctsr_model *load_ok(const char *label, const uint8_t *data, size_t size)
{
    char err[512] = "";
    ctsr_model *m = NULL;
    int rc = ctsr_model_load_memory(data, size, &m, err, sizeof err);
    TU_EXPECT(rc == 0 && m, "%s: load failed: %d %s", label, rc, err);
    return rc == 0 ? m : NULL;
}

/* every tensor of tm at the right place with the right values */
static void check_weights(const char *label, const ctsr_model *m, tmodel *tm)
{
    size_t total = 0;
    int bad = 0;
    for (int i = 0; i < tm->n; i++) {
        const ttensor *t = &tm->t[i];
        total += t->count;
        const float *p = model_tensor(m, t->name);
        if (!pointer_in_storage(m, p, t->count)) {
            bad++;
            TU_EXPECT(0, "%s: tensor %s not in storage", label, t->name);
            continue;
        }
        for (size_t j = 0; j < t->count; j++) {
            int same = isnan(t->vals[j]) ? isnan(p[j])
                                         : memcmp(&p[j], &t->vals[j], sizeof(float)) == 0;
            if (!same) {
                bad++;
                TU_EXPECT(0, "%s: %s[%zu] = %.9g, expected %.9g", label, t->name, j, p[j],
                         t->vals[j]);
                break;
            }
        }
    }
    TU_EXPECT(bad == 0, "%s: %d tensors wrong", label, bad);
    TU_EXPECT(m->n_params == total, "%s: n_params %zu, expected %zu", label, m->n_params, total);
}

static void test_valid_f32(void)
{
    tmodel tm;
    tm_build(&tm, &TINY, 0, 1);
    size_t size;
    uint8_t *data = tm_write(&tm, &size);
    ctsr_model *m = load_ok("valid f32", data, size);
    if (m) {
        const ctsr_config *c = &m->cfg;
        TU_EXPECT(c->scale == 2 && c->channels == 8 && c->blocks == 2 && c->window == 4 &&
                  c->heads == 2 && c->mlp_ratio == 2 && c->act == CTSR_ACT_LRELU &&
                  c->temb_dim == 8 && c->temb_hidden == 16 && c->temb_scale == 100.0f &&
                  c->attn_mask == 2u,
              "config parsed wrong");
        TU_EXPECT(m->format_version == 1, "format_version %d", m->format_version);
        TU_EXPECT(m->config_json && !strcmp(m->config_json, tm.config), "config_json not kept");
        TU_EXPECT(m->provenance && !strcmp(m->provenance, "{\"name\": \"unit-test\"}"),
              "provenance \"%s\"", m->provenance ? m->provenance : "(null)");
        TU_EXPECT(m->head.cout == 8 && m->head.cin == 3 && m->head.k == 3, "head dims");
        TU_EXPECT(m->tail.cout == 12 && m->tail.cin == 8 && m->tail.k == 3, "tail dims");
        TU_EXPECT(m->fc1.cout == 16 && m->fc1.cin == 8 && m->fc1.k == 1, "fc1 dims");
        TU_EXPECT(m->fc2.cout == 16 && m->fc2.cin == 16 && m->fc2.k == 1, "fc2 dims");
        TU_EXPECT(!m->blocks[0].has_attn && m->blocks[1].has_attn, "has_attn");
        const ctsr_block *b = &m->blocks[1];
        TU_EXPECT(b->conv1.cout == 8 && b->conv1.cin == 8 && b->conv1.k == 3, "conv1 dims");
        TU_EXPECT(b->film.cout == 16 && b->film.cin == 16 && b->film.k == 1, "film dims");
        TU_EXPECT(b->qkv.cout == 24 && b->qkv.cin == 8 && b->qkv.k == 1, "qkv dims");
        TU_EXPECT(b->proj.cout == 8 && b->proj.cin == 8 && b->proj.k == 1, "proj dims");
        TU_EXPECT(b->mlp1.cout == 16 && b->mlp1.cin == 8 && b->mlp1.k == 1, "mlp1 dims");
        TU_EXPECT(b->mlp2.cout == 8 && b->mlp2.cin == 16 && b->mlp2.k == 1, "mlp2 dims");
        check_weights("valid f32", m, &tm);
        ctsr_model_free(m);
    }
    free(data);

    /* provenance is optional */
    snprintf(tm.meta, sizeof tm.meta,
             "{\"format\": \"ctsr-student\", \"format_version\": \"1\", \"config\": \"{\\\"act\\\": "
             "\\\"relu\\\", \\\"attn_blocks\\\": [1], \\\"blocks\\\": 2, \\\"channels\\\": 8, "
             "\\\"heads\\\": 2, \\\"mlp_ratio\\\": 2, \\\"scale\\\": 2, \\\"temb_dim\\\": 8, "
             "\\\"temb_hidden\\\": 16, \\\"temb_scale\\\": 100, \\\"window\\\": 4}\"}");
    data = tm_write(&tm, &size);
    m = load_ok("no provenance", data, size);
    if (m) {
        TU_EXPECT(m->provenance && m->provenance[0] == 0, "provenance should be empty");
        TU_EXPECT(m->cfg.act == CTSR_ACT_RELU && m->cfg.temb_scale == 100.0f, "config");
        ctsr_model_free(m);
    }
    free(data);
    tm_free(&tm);
}

static void test_valid_f16(void)
{
    tmodel tm;
    tm_build(&tm, &TINY, 1, 7);
    /* known values in head.bias (8 entries) */
    /* (inf and NaN are refused: test_nonfinite) */
    static const uint16_t bits[8] = {0x3C00, 0xC100, 0x7BFF, 0x0001,
                                     0x83FF, 0x8000, 0xFBFF, 0x3555};
    static const float want[8] = {1.0f, -2.5f, 65504.0f, 5.9604644775390625e-8f,
                                  -6.0975551605224609375e-5f, -0.0f, -65504.0f,
                                  0.333251953125f};
    ttensor *hb = tm_find(&tm, "head.bias");
    for (int i = 0; i < 8; i++) {
        hb->half[i] = bits[i];
        hb->vals[i] = half_value(bits[i]);
    }
    /* subnormals with several bit patterns in head.weight */
    ttensor *hw = tm_find(&tm, "head.weight");
    for (int i = 0; i < 10; i++) {
        hw->half[i] = (uint16_t)((i & 1) << 15 | (1u << i));
        hw->vals[i] = half_value(hw->half[i]);
    }
    size_t size;
    uint8_t *data = tm_write(&tm, &size);
    ctsr_model *m = load_ok("valid f16", data, size);
    if (m) {
        check_weights("valid f16", m, &tm);
        const float *b = m->head.b;
        TU_EXPECT(b[0] == 1.0f && b[1] == -2.5f && b[2] == 65504.0f, "F16 normal values: %g %g %g",
              b[0], b[1], b[2]);
        TU_EXPECT(b[3] == want[3] && b[3] == ldexpf(1.0f, -24), "smallest subnormal: %g", b[3]);
        TU_EXPECT(b[4] == want[4] && b[4] == -1023.0f * ldexpf(1.0f, -24),
              "largest subnormal: %g", b[4]);
        TU_EXPECT(b[5] == 0.0f && signbit(b[5]), "-0: %g", b[5]);
        TU_EXPECT(b[6] == want[6] && b[7] == want[7], "-65504, 1/3: %g %g", b[6], b[7]);
        for (int i = 0; i < 10; i++)
            TU_EXPECT(m->head.w[i] == (i & 1 ? -1.0f : 1.0f) * ldexpf(1.0f, i - 24),
                  "subnormal 2^%d: %g", i - 24, m->head.w[i]);
        ctsr_model_free(m);
    }
    free(data);
    tm_free(&tm);
}

/* mutate a fresh tiny model, write it, expect failure */
typedef void (*mutator)(tmodel *);

static void fail_case(const char *label, mutator mut, int code, const char *word)
{
    tmodel tm;
    tm_build(&tm, &TINY, 0, 3);
    mut(&tm);
    size_t size;
    uint8_t *data = tm_write(&tm, &size);
    expect_fail(label, data, size, code, word);
    free(data);
    tm_free(&tm);
}

static void set_meta(tmodel *tm, const char *fmt, const char *ver)
{
    char esc[2048];
    size_t e = 0;
    for (const char *c = tm->config; *c && e + 2 < sizeof esc; c++) {
        if (*c == '"' || *c == '\\')
            esc[e++] = '\\';
        esc[e++] = *c;
    }
    esc[e] = 0;
    snprintf(tm->meta, sizeof tm->meta,
             "{\"format\": \"%s\", \"format_version\": \"%s\", \"config\": \"%s\"}", fmt, ver,
             esc);
}

static void m_no_meta(tmodel *tm) { snprintf(tm->meta, sizeof tm->meta, "null"); }
static void m_meta_array(tmodel *tm) { snprintf(tm->meta, sizeof tm->meta, "[1, 2]"); }
static void m_format(tmodel *tm) { set_meta(tm, "something-else", "1"); }
static void m_version2(tmodel *tm) { set_meta(tm, "ctsr-student", "2"); }
static void m_no_format(tmodel *tm)
{
    snprintf(tm->meta, sizeof tm->meta, "{\"format_version\": \"1\", \"config\": \"{}\"}");
}
static void m_no_config(tmodel *tm)
{
    snprintf(tm->meta, sizeof tm->meta, "{\"format\": \"ctsr-student\", \"format_version\": \"1\"}");
}
static void m_version_int(tmodel *tm)
{
    snprintf(tm->meta, sizeof tm->meta,
             "{\"format\": \"ctsr-student\", \"format_version\": 1, \"config\": \"{}\"}");
}
static void m_bad_config_json(tmodel *tm)
{
    snprintf(tm->config, sizeof tm->config, "{\"scale\": 2, ");
    set_meta(tm, "ctsr-student", "1");
}
static void m_config_not_object(tmodel *tm)
{
    snprintf(tm->config, sizeof tm->config, "[2, 8]");
    set_meta(tm, "ctsr-student", "1");
}
static void m_channels6(tmodel *tm)
{
    tcfg c = TINY;
    c.channels = 6;
    cfg_json(&c, tm->config, sizeof tm->config);
    set_meta(tm, "ctsr-student", "1");
}
static void m_act_tanh(tmodel *tm)
{
    tcfg c = TINY;
    c.act = "tanh";
    cfg_json(&c, tm->config, sizeof tm->config);
    set_meta(tm, "ctsr-student", "1");
}
static void m_attn_range(tmodel *tm)
{
    tcfg c = TINY;
    c.attn[0] = 2;
    cfg_json(&c, tm->config, sizeof tm->config);
    set_meta(tm, "ctsr-student", "1");
}
static void m_dtype_i32(tmodel *tm) { snprintf(tm_find(tm, "head.weight")->dtype, 16, "I32"); }
static void m_shape(tmodel *tm)
{
    ttensor *t = tm_find(tm, "blocks.1.conv2.weight");
    t->shape[2] = 9, t->shape[3] = 1; /* same element count */
}
static void m_rank(tmodel *tm)
{
    ttensor *t = tm_find(tm, "temb.fc1.weight");
    t->rank = 4, t->shape[2] = 1, t->shape[3] = 1;
}
static void m_missing(tmodel *tm) { tm_find(tm, "blocks.1.attn.norm2.bias")->omit = 1; }
static void m_missing_attn(tmodel *tm)
{
    tcfg c = TINY;
    c.attn[0] = 0, c.attn[1] = 1, c.n_attn = 2; /* block 0 needs tensors the file lacks */
    cfg_json(&c, tm->config, sizeof tm->config);
    set_meta(tm, "ctsr-student", "1");
}
static void m_extra(tmodel *tm)
{
    tm->extra_entry = "\"blocks.7.conv1.weight\": {\"dtype\": \"F32\", \"shape\": [8], "
                      "\"data_offsets\": [0, 32]}";
}
static void m_offsets_plus(tmodel *tm) { tm_find(tm, "tail.bias")->off_delta = 4; }
static void m_offsets_minus(tmodel *tm) { tm_find(tm, "temb.fc2.weight")->off_delta = -2; }
static void replace_head_bias(tmodel *tm, const char *entry)
{
    tm_find(tm, "head.bias")->omit = 1;
    tm->extra_entry = entry;
}
static void m_reversed(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8], "
                          "\"data_offsets\": [32, 0]}");
}
static void m_negative(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8], "
                          "\"data_offsets\": [-32, 0]}");
}
static void m_beyond(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8], "
                          "\"data_offsets\": [1000000, 1000032]}");
}
static void m_huge_offsets(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8], "
                          "\"data_offsets\": [9223372036854775775, 9223372036854775807]}");
}
static void m_no_dtype(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"shape\": [8], \"data_offsets\": [0, 32]}");
}
static void m_no_shape(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"data_offsets\": [0, 32]}");
}
static void m_no_offsets(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8]}");
}
static void m_shape_string(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"shape\": \"8\", "
                          "\"data_offsets\": [0, 32]}");
}
static void m_shape_float(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8.0], "
                          "\"data_offsets\": [0, 32]}");
}
static void m_shape_huge(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [4294967296, "
                          "4294967296, 4294967296], \"data_offsets\": [0, 32]}");
}
static void m_dtype_number(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": 32, \"shape\": [8], "
                          "\"data_offsets\": [0, 32]}");
}
static void m_offsets_three(tmodel *tm)
{
    replace_head_bias(tm, "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8], "
                          "\"data_offsets\": [0, 16, 32]}");
}
static void m_entry_not_object(tmodel *tm) { replace_head_bias(tm, "\"head.bias\": [0, 32]"); }

static void test_malformed(void)
{
    uint8_t zero8[8] = {0};
    size_t size;
    uint8_t *d;

    expect_fail("empty file", zero8, 0, CTSR_E_FORMAT, "truncated");
    expect_fail("NULL, 0", NULL, 0, CTSR_E_FORMAT, "truncated");
    expect_fail("truncated header length", zero8, 5, CTSR_E_FORMAT, "truncated");
    d = raw_file("{\"a\": 1}", 1000, &size);
    expect_fail("header length beyond file", d, size, CTSR_E_FORMAT, "truncated");
    free(d);
    d = raw_file("{}", (uint64_t)200 * 1000 * 1000, &size);
    expect_fail("header length > 100 MB", d, size, CTSR_E_FORMAT, "header length");
    free(d);
    d = raw_file("{}", UINT64_MAX, &size);
    expect_fail("header length 2^64-1", d, size, CTSR_E_FORMAT, "header length");
    free(d);
    d = raw_file("{not json at all", 16, &size);
    expect_fail("non-JSON header", d, size, CTSR_E_FORMAT, "JSON");
    free(d);
    d = raw_file("", 0, &size);
    expect_fail("zero-length header", d, size, CTSR_E_FORMAT, "JSON");
    free(d);
    d = raw_file("[1, 2, 3]       ", 16, &size);
    expect_fail("header not an object", d, size, CTSR_E_FORMAT, "object");
    free(d);
    d = raw_file("\"ctsr\"  ", 8, &size);
    expect_fail("header a string", d, size, CTSR_E_FORMAT, "object");
    free(d);
    {
        char deep[4096];
        memset(deep, '[', sizeof deep - 1);
        deep[sizeof deep - 1] = 0;
        d = raw_file(deep, strlen(deep), &size);
        expect_fail("deeply nested header", d, size, CTSR_E_FORMAT, "nested");
        free(d);
    }
    d = raw_file("{\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [0, 32]}}",
                 0, &size);
    put_le(d, size - 8, 8);
    expect_fail("missing __metadata__", d, size, CTSR_E_FORMAT, "__metadata__");
    free(d);

    /* truncated data: cut the end off a valid file */
    tmodel tm;
    tm_build(&tm, &TINY, 0, 5);
    d = tm_write(&tm, &size);
    expect_fail("truncated data", d, size - 100, CTSR_E_FORMAT, "truncated");
    expect_fail("truncated data (1 byte)", d, size - 1, CTSR_E_FORMAT, "truncated");
    /* every truncation point fails cleanly */
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | d[i];
    int all_fail = 1;
    for (size_t n = 0; n < size; n += n < 8 + hl ? 1 : 7) {
        char err[256];
        ctsr_model *m = NULL;
        int rc = ctsr_model_load_memory(d, n, &m, err, sizeof err);
        if (rc != CTSR_E_FORMAT || m) {
            all_fail = 0;
            TU_EXPECT(0, "truncated at %zu: rc %d", n, rc);
            ctsr_model_free(m);
            break;
        }
    }
    TU_EXPECT(all_fail, "every truncation fails with CTSR_E_FORMAT");
    /* corrupting any header byte never crashes (valgrind run checks reads) */
    static const uint8_t junk[] = {'}', '"', '9', 0, 0xff};
    int crashes_none = 1, n_ok = 0;
    uint8_t *c = malloc(size);
    size_t n_var = 0;
    for (size_t pos = 8; pos < 8 + hl; pos += 2) {
        for (size_t j = (pos / 2) % 2; j < sizeof junk; j += 2) {
            n_var++;
            memcpy(c, d, size);
            c[pos] = junk[j];
            char err[256];
            ctsr_model *m = NULL;
            int rc = ctsr_model_load_memory(c, size, &m, err, sizeof err);
            if (rc == 0) {
                n_ok++;
                ctsr_model_free(m);
            } else if (rc != CTSR_E_FORMAT || !err[0]) {
                crashes_none = 0;
            }
        }
    }
    free(c);
    TU_EXPECT(crashes_none, "header corruption gives CTSR_E_FORMAT with a message");
    printf("  header corruption: %zu variants, %d still load (harmless edits)\n",
           n_var, n_ok);
    free(d);
    tm_free(&tm);

    fail_case("__metadata__ null", m_no_meta, CTSR_E_FORMAT, "__metadata__");
    fail_case("__metadata__ array", m_meta_array, CTSR_E_FORMAT, "__metadata__");
    fail_case("wrong format name", m_format, CTSR_E_FORMAT, "something-else");
    fail_case("no format", m_no_format, CTSR_E_FORMAT, "format");
    fail_case("format_version 2", m_version2, CTSR_E_FORMAT, "version");
    fail_case("format_version 2 (names 1)", m_version2, CTSR_E_FORMAT, "supports version 1");
    fail_case("format_version an int", m_version_int, CTSR_E_FORMAT, "format_version");
    fail_case("no config", m_no_config, CTSR_E_FORMAT, "config");
    fail_case("bad config JSON", m_bad_config_json, CTSR_E_FORMAT, "config");
    fail_case("config not an object", m_config_not_object, CTSR_E_FORMAT, "object");
    fail_case("config channels 6", m_channels6, CTSR_E_FORMAT, "channels");
    fail_case("config act tanh", m_act_tanh, CTSR_E_FORMAT, "act");
    fail_case("config attn block 2 of 2", m_attn_range, CTSR_E_FORMAT, "attn_blocks");
    fail_case("dtype I32", m_dtype_i32, CTSR_E_FORMAT, "I32");
    fail_case("dtype I32 (names tensor)", m_dtype_i32, CTSR_E_FORMAT, "head.weight");
    fail_case("dtype a number", m_dtype_number, CTSR_E_FORMAT, "dtype");
    fail_case("wrong shape", m_shape, CTSR_E_FORMAT, "blocks.1.conv2.weight");
    fail_case("wrong shape (expected)", m_shape, CTSR_E_FORMAT, "expected [8, 8, 3, 3]");
    fail_case("wrong shape (found)", m_shape, CTSR_E_FORMAT, "found [8, 8, 9, 1]");
    fail_case("wrong rank", m_rank, CTSR_E_FORMAT, "temb.fc1.weight");
    fail_case("shape a string", m_shape_string, CTSR_E_FORMAT, "shape");
    fail_case("shape of floats", m_shape_float, CTSR_E_FORMAT, "shape");
    fail_case("shape overflowing", m_shape_huge, CTSR_E_FORMAT, "shape");
    fail_case("missing tensor", m_missing, CTSR_E_FORMAT, "blocks.1.attn.norm2.bias");
    fail_case("missing attention tensors", m_missing_attn, CTSR_E_FORMAT, "blocks.0.attn");
    fail_case("extra tensor", m_extra, CTSR_E_FORMAT, "blocks.7.conv1.weight");
    fail_case("data_offsets too long", m_offsets_plus, CTSR_E_FORMAT, "data_offsets");
    fail_case("data_offsets too short", m_offsets_minus, CTSR_E_FORMAT, "temb.fc2.weight");
    fail_case("data_offsets reversed", m_reversed, CTSR_E_FORMAT, "data_offsets");
    fail_case("data_offsets negative", m_negative, CTSR_E_FORMAT, "data_offsets");
    fail_case("data_offsets beyond data", m_beyond, CTSR_E_FORMAT, "data_offsets");
    fail_case("data_offsets near 2^63", m_huge_offsets, CTSR_E_FORMAT, "data_offsets");
    fail_case("data_offsets three values", m_offsets_three, CTSR_E_FORMAT, "data_offsets");
    fail_case("entry without dtype", m_no_dtype, CTSR_E_FORMAT, "dtype");
    fail_case("entry without shape", m_no_shape, CTSR_E_FORMAT, "shape");
    fail_case("entry without data_offsets", m_no_offsets, CTSR_E_FORMAT, "data_offsets");
    fail_case("entry not an object", m_entry_not_object, CTSR_E_FORMAT, "head.bias");

    /* small and zero error buffers */
    {
        tmodel t2;
        tm_build(&t2, &TINY, 0, 5);
        m_version2(&t2);
        d = tm_write(&t2, &size);
        char small[8];
        ctsr_model *m = NULL;
        int rc = ctsr_model_load_memory(d, size, &m, small, sizeof small);
        TU_EXPECT(rc == CTSR_E_FORMAT && memchr(small, 0, sizeof small), "small err buffer");
        rc = ctsr_model_load_memory(d, size, &m, NULL, 0);
        TU_EXPECT(rc == CTSR_E_FORMAT && !m, "NULL err buffer");
        free(d);
        tm_free(&t2);
    }
}

static void test_files(void)
{
    char err[512];
    ctsr_model *m = (ctsr_model *)1;
    int rc = ctsr_model_load_file("no/such/dir/model.safetensors", &m, err, sizeof err);
    TU_EXPECT(rc == CTSR_E_IO && !m, "missing file: rc %d", rc);
    TU_EXPECT(strstr(err, "no/such/dir/model.safetensors") && strstr(err, "No such file"),
          "missing file message: %s", err);
    printf("  %-28s -> %s\n", "missing file", err);
    rc = ctsr_model_load_file(".", &m, err, sizeof err);
    TU_EXPECT(rc == CTSR_E_IO && !m, "directory: rc %d (%s)", rc, err);
    printf("  %-28s -> %s\n", "directory", err);

    /* a valid and a malformed model through a real file */
    const char *tmpdir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/ctsr-test-model-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    TU_EXPECT(fd >= 0, "mkstemp %s", path);
    if (fd < 0)
        return;
    tmodel tm;
    tm_build(&tm, &TINY, 0, 9);
    size_t size;
    uint8_t *d = tm_write(&tm, &size);
    TU_EXPECT(write(fd, d, size) == (ssize_t)size, "write");
    close(fd);
    rc = ctsr_model_load_file(path, &m, err, sizeof err);
    TU_EXPECT(rc == 0 && m, "load_file: %d %s", rc, err);
    if (rc == 0) {
        check_weights("load_file", m, &tm);
        ctsr_model_free(m);
    }
    FILE *f = fopen(path, "wb");
    fwrite(d, 1, size / 2, f);
    fclose(f);
    rc = ctsr_model_load_file(path, &m, err, sizeof err);
    TU_EXPECT(rc == CTSR_E_FORMAT && !m && strstr(err, path) && strstr(err, "truncated"),
          "truncated file: %d %s", rc, err);
    unlink(path);
    free(d);
    tm_free(&tm);
    ctsr_model_free(NULL); /* NULL-safe */
}

static void config_case(const char *json, int ok, const char *word)
{
    ctsr_config c;
    char err[256] = "";
    int rc = ctsr_config_parse(json, &c, err, sizeof err);
    if (ok)
        TU_EXPECT(rc == 0, "config %s rejected: %s", json, err);
    else
        TU_EXPECT(rc == CTSR_E_FORMAT && strstr(err, word), "config %s: rc %d, message \"%s\" lacks \"%s\"",
              json, rc, err, word);
}

static void test_config(void)
{
#define BASE "\"scale\": 2, \"blocks\": 4, \"attn_blocks\": [1, 3], \"window\": 8, " \
             "\"mlp_ratio\": 2, \"act\": \"lrelu\", \"temb_dim\": 32, \"temb_hidden\": 64, " \
             "\"temb_scale\": 100.0"
    config_case("{" BASE ", \"channels\": 32, \"heads\": 2}", 1, "");
    config_case("{" BASE ", \"channels\": 12, \"heads\": 3}", 1, "");
    config_case("{" BASE ", \"channels\": 32, \"heads\": 2, \"comment\": \"extra keys are ignored\"}", 1, "");
    config_case("{" BASE ", \"channels\": 6, \"heads\": 1}", 0, "channels");
    config_case("{" BASE ", \"channels\": 0, \"heads\": 1}", 0, "channels");
    config_case("{" BASE ", \"channels\": 512, \"heads\": 1}", 0, "channels");
    config_case("{" BASE ", \"channels\": 8, \"heads\": 4}", 0, "heads");
    config_case("{" BASE ", \"channels\": 12, \"heads\": 5}", 0, "heads");
    config_case("{" BASE ", \"channels\": 32, \"heads\": 0}", 0, "heads");
    config_case("{" BASE ", \"channels\": 32, \"heads\": -2}", 0, "heads");
    config_case("{" BASE ", \"channels\": 32}", 0, "heads");
    config_case("{" BASE ", \"channels\": \"32\", \"heads\": 2}", 0, "channels");
    config_case("{" BASE ", \"channels\": 32.0, \"heads\": 2}", 0, "channels");
#undef BASE
#define REST "\"channels\": 8, \"heads\": 2, \"mlp_ratio\": 2, \"temb_hidden\": 16, "
    config_case("{" REST "\"scale\": 5, \"blocks\": 2, \"attn_blocks\": [], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "scale");
    config_case("{" REST "\"scale\": 1, \"blocks\": 2, \"attn_blocks\": [], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "scale");
    config_case("{" REST "\"scale\": 4, \"blocks\": 0, \"attn_blocks\": [], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "blocks");
    config_case("{" REST "\"scale\": 4, \"blocks\": 33, \"attn_blocks\": [], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "blocks");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [-1], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "attn_blocks");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [1, 1], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "attn_blocks");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": 1, \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "attn_blocks");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [\"1\"], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "attn_blocks");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 0, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "window");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 17, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "window");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 16, \"act\": \"silu\", \"temb_dim\": 8, \"temb_scale\": 100}", 1, "");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 8, \"act\": \"tanh\", \"temb_dim\": 8, \"temb_scale\": 100}", 0, "act");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 8, \"act\": 1, \"temb_dim\": 8, \"temb_scale\": 100}", 0, "act");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 7, \"temb_scale\": 100}", 0, "temb_dim");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": \"100\"}", 0, "temb_scale");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": -1.0}", 0, "temb_scale");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8, \"temb_scale\": 1e400}", 0, "temb_scale");
    config_case("{" REST "\"scale\": 3, \"blocks\": 2, \"attn_blocks\": [], \"window\": 8, \"act\": \"relu\", \"temb_dim\": 8}", 0, "temb_scale");
#undef REST
    config_case("", 0, "config");
    config_case("nonsense", 0, "config");
    config_case("42", 0, "object");

    ctsr_config c;
    char err[256];
    int rc = ctsr_config_parse("{\"act\": \"lrelu\", \"attn_blocks\": [1, 3], \"blocks\": 4, "
                               "\"channels\": 32, \"heads\": 2, \"mlp_ratio\": 2, \"scale\": 2, "
                               "\"temb_dim\": 32, \"temb_hidden\": 64, \"temb_scale\": 100.0, "
                               "\"window\": 8}",
                               &c, err, sizeof err);
    TU_EXPECT(rc == 0, "default config: %s", err);
    if (rc == 0) {
        TU_EXPECT(c.attn_mask == 0xau, "attn_mask %#x", c.attn_mask);
        /* student.macs_per_pixel(CONFIGS["default"]) */
        double macs = ctsr_config_macs_per_pixel(&c);
        TU_EXPECT(macs == 102624.0, "default macs_per_pixel %.1f, expected 102624", macs);
    }
    rc = ctsr_config_parse("{\"act\": \"lrelu\", \"attn_blocks\": [1], \"blocks\": 2, "
                           "\"channels\": 12, \"heads\": 1, \"mlp_ratio\": 2, \"scale\": 2, "
                           "\"temb_dim\": 32, \"temb_hidden\": 64, \"temb_scale\": 100.0, "
                           "\"window\": 8}",
                           &c, err, sizeof err);
    TU_EXPECT(rc == 0, "tiny config: %s", err); /* CONFIGS["tiny"] */
    if (rc == 0) {
        /* 9*3*12 + 9*12*12 + 2*2*9*144 + (3*144 + 144 + 2*12*24 + 2*64*12) */
        double macs = ctsr_config_macs_per_pixel(&c);
        TU_EXPECT(macs == 324.0 + 1296.0 + 5184.0 + (432.0 + 144.0 + 576.0 + 1536.0),
              "tiny macs_per_pixel %.1f", macs);
    }
}

/* the timestep MLP, computed here independently in double precision */
static void film_expected(const tmodel *tm, const tcfg *c, float t, double *out)
{
    int E = c->temb_dim, M = c->temb_hidden, C = c->channels, half = E / 2;
    double emb[64], h1[64], z[64];
    double tt = t < 0 ? 0 : t > 1 ? 1 : t;
    for (int i = 0; i < half; i++) {
        double arg = tt * c->temb_scale * exp(-log(10000.0) * i / half);
        emb[i] = sin(arg);
        emb[half + i] = cos(arg);
    }
    const float *w1 = tm_find((tmodel *)tm, "temb.fc1.weight")->vals;
    const float *b1 = tm_find((tmodel *)tm, "temb.fc1.bias")->vals;
    const float *w2 = tm_find((tmodel *)tm, "temb.fc2.weight")->vals;
    const float *b2 = tm_find((tmodel *)tm, "temb.fc2.bias")->vals;
    for (int o = 0; o < M; o++) {
        double a = b1[o];
        for (int i = 0; i < E; i++)
            a += w1[o * E + i] * emb[i];
        h1[o] = a / (1 + exp(-a));
    }
    for (int o = 0; o < M; o++) {
        double a = b2[o];
        for (int i = 0; i < M; i++)
            a += w2[o * M + i] * h1[i];
        z[o] = a / (1 + exp(-a));
    }
    for (int b = 0; b < c->blocks; b++) {
        char n[64];
        snprintf(n, sizeof n, "blocks.%d.film.weight", b);
        const float *w = tm_find((tmodel *)tm, n)->vals;
        snprintf(n, sizeof n, "blocks.%d.film.bias", b);
        const float *bb = tm_find((tmodel *)tm, n)->vals;
        for (int o = 0; o < 2 * C; o++) {
            double a = bb[o];
            for (int i = 0; i < M; i++)
                a += w[o * M + i] * z[i];
            out[b * 2 * C + o] = a;
        }
    }
}

static void test_film(void)
{
    tmodel tm;
    tm_build(&tm, &TINY, 0, 11);
    size_t size;
    uint8_t *d = tm_write(&tm, &size);
    ctsr_model *m = load_ok("film model", d, size);
    if (m) {
        const int n = TINY.blocks * 2 * TINY.channels;
        float got[64];
        double want[64];
        const float ts[] = {0.0f, 0.37f, 0.5f, 1.0f, -1.0f, 3.0f};
        for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
            ctsr_model_film(m, ts[k], got);
            film_expected(&tm, &TINY, ts[k], want);
            double md = 0;
            for (int i = 0; i < n; i++)
                md = fmax(md, fabs(got[i] - want[i]));
            TU_EXPECT(md < 2e-5, "film t=%g: max diff %.3g", ts[k], md);
            printf("  film t=%-5g max diff vs double %.3g\n", ts[k], md);
        }
        /* hand-computed: t=0 gives emb = [0 0 0 0 | 1 1 1 1]; with fc1 = fc2 = 0 except
         * biases, z = silu(b2) and film = W_film z + b_film */
        memset(m->fc1.w, 0, sizeof(float) * 16 * 8);
        memset(m->fc2.w, 0, sizeof(float) * 16 * 16);
        for (int i = 0; i < 16; i++)
            m->fc2.b[i] = i == 0 ? 2.0f : 0.0f;
        for (int b = 0; b < 2; b++)
            for (int o = 0; o < 16; o++) {
                for (int i = 0; i < 16; i++)
                    m->blocks[b].film.w[o * 16 + i] = i == 0 ? (float)(o + b) : 0.0f;
                m->blocks[b].film.b[o] = -1.0f;
            }
        ctsr_model_film(m, 0.7f, got);
        /* silu(2) = 2 / (1 + e^-2) = 1.761594156 */
        double z0 = 1.7615941559557649;
        double md = 0;
        for (int b = 0; b < 2; b++)
            for (int o = 0; o < 16; o++)
                md = fmax(md, fabs(got[b * 16 + o] - ((o + b) * z0 - 1.0)));
        TU_EXPECT(md < 1e-5, "hand-computed film: max diff %.3g", md);
        ctsr_model_free(m);
    }
    free(d);
    tm_free(&tm);
}

static void test_golden(void)
{
    char err[512];
    ctsr_model *a = NULL, *b = NULL;
    char p32[4096], p16[4096];
    snprintf(p32, sizeof p32, "%s", tu_data_path("golden_small.safetensors"));
    snprintf(p16, sizeof p16, "%s", tu_data_path("golden_small_f16.safetensors"));
    int rc = ctsr_model_load_file(p32, &a, err, sizeof err);
    TU_EXPECT(rc == 0, "golden model %s: %s (generate it: cd training && python3 -m ctsr.golden "
                   "--out ../tests/data)", p32, err);
    int rc16 = ctsr_model_load_file(p16, &b, err, sizeof err);
    TU_EXPECT(rc16 == 0, "golden model %s: %s", p16, err);
    if (rc == 0) {
        const ctsr_config *c = &a->cfg;
        TU_EXPECT(c->scale == 2 && c->channels == 8 && c->blocks == 2 && c->attn_mask == 3u &&
                  c->window == 4 && c->heads == 2 && c->mlp_ratio == 2 &&
                  c->act == CTSR_ACT_SILU && c->temb_dim == 16 && c->temb_hidden == 32 &&
                  c->temb_scale == 100.0f,
              "golden_small config: %s", a->config_json);
        TU_EXPECT(strstr(a->provenance, "golden-small") != NULL, "provenance %s", a->provenance);
        printf("  golden_small: %zu params, provenance %s\n", a->n_params, a->provenance);
    }
    if (rc == 0 && rc16 == 0) {
        TU_EXPECT(a->n_params == b->n_params && !memcmp(&a->cfg, &b->cfg, sizeof a->cfg),
              "f16 and f32 golden models differ in config");
        if (a->n_params == b->n_params) {
            size_t bad = 0, exact = 0;
            double md = 0;
            for (size_t i = 0; i < a->n_params; i++) {
                double x = a->storage[i], y = b->storage[i];
                double tol = fabs(x) * ldexp(1.0, -11) + ldexp(1.0, -25);
                bad += !(fabs(x - y) <= tol);
                exact += x == y;
                md = fmax(md, fabs(x - y));
            }
            TU_EXPECT(bad == 0, "%zu f16 weights off by more than fp16 rounding", bad);
            TU_EXPECT(exact < a->n_params, "f16 model identical to f32: was it really F16?");
            printf("  golden_small f16 vs f32: max diff %.3g (%zu of %zu exact)\n", md, exact,
                   a->n_params);
        }
    }
    ctsr_model_free(a);
    ctsr_model_free(b);
}

/* ---- issue 9: non-finite and huge weights, structurally invalid headers, big integers,
 * files that are not regular or carry more than the header declares ---- */

/* A tiny model with one value of one tensor replaced (F32 value, or F16 bits when f16). */
static uint8_t *tm_with_value(const char *tensor, size_t idx, float v, int f16, uint16_t hbits,
                              size_t *size)
{
    tmodel tm;
    tm_build(&tm, &TINY, f16, 11);
    ttensor *t = tm_find(&tm, tensor);
    if (f16)
        t->half[idx] = hbits;
    else
        t->vals[idx] = v;
    uint8_t *d = tm_write(&tm, size);
    tm_free(&tm);
    return d;
}

static void test_nonfinite(void)
{
    size_t size;
    uint8_t *d;
    d = tm_with_value("blocks.1.conv1.weight", 5, NAN, 0, 0, &size);
    expect_fail("F32 NaN", d, size, CTSR_E_FORMAT, "tensor 'blocks.1.conv1.weight': element 5 is NaN");
    free(d);
    d = tm_with_value("head.bias", 0, INFINITY, 0, 0, &size);
    expect_fail("F32 +inf", d, size, CTSR_E_FORMAT, "tensor 'head.bias': element 0 is +inf");
    free(d);
    d = tm_with_value("temb.fc1.weight", 3, -INFINITY, 0, 0, &size);
    expect_fail("F32 -inf", d, size, CTSR_E_FORMAT, "'temb.fc1.weight': element 3 is -inf");
    free(d);
    d = tm_with_value("head.bias", 6, 0, 1, 0x7C00, &size);
    expect_fail("F16 +inf", d, size, CTSR_E_FORMAT, "tensor 'head.bias': element 6 is +inf");
    free(d);
    d = tm_with_value("head.bias", 7, 0, 1, 0x7E00, &size);
    expect_fail("F16 NaN", d, size, CTSR_E_FORMAT, "tensor 'head.bias': element 7 is NaN");
    free(d);
    d = tm_with_value("tail.bias", 1, 0, 1, 0xFC00, &size);
    expect_fail("F16 -inf", d, size, CTSR_E_FORMAT, "tensor 'tail.bias': element 1 is -inf");
    free(d);
    d = tm_with_value("tail.bias", 2, 0, 1, 0xFC01, &size); /* a NaN with the sign bit */
    expect_fail("F16 negative NaN", d, size, CTSR_E_FORMAT, "is NaN");
    free(d);
}

/* Finite weights so large that the activations overflow would give black frames: refused by
 * the probe at load. Large weights that stay finite still load. */
static void test_huge_finite(void)
{
    tmodel tm;
    size_t size;
    uint8_t *d;
    const char *tensors[] = {"head.weight", "blocks.0.conv1.weight", "temb.fc1.weight",
                             "blocks.1.attn.mlp1.weight"};
    for (size_t k = 0; k < sizeof tensors / sizeof *tensors; k++) {
        tm_build(&tm, &TINY, 0, 13);
        ttensor *t = tm_find(&tm, tensors[k]);
        for (size_t i = 0; i < t->count; i++)
            t->vals[i] = (i % 2 ? -3e38f : 3e38f);
        d = tm_write(&tm, &size);
        char label[96];
        snprintf(label, sizeof label, "%s = +-3e38", tensors[k]);
        expect_fail(label, d, size, CTSR_E_FORMAT, "non-finite values");
        free(d);
        tm_free(&tm);
    }
    /* 1e4 in every weight of the first conv of a block: large, but finite all the way */
    tm_build(&tm, &TINY, 0, 13);
    ttensor *t = tm_find(&tm, "blocks.0.conv1.bias");
    for (size_t i = 0; i < t->count; i++)
        t->vals[i] = 1e4f;
    d = tm_write(&tm, &size);
    ctsr_model *m = load_ok("large finite bias", d, size);
    ctsr_model_free(m);
    free(d);
    tm_free(&tm);
}

/* raw header text + data bytes of n floats */
static uint8_t *raw_model(const char *header, size_t data_bytes, size_t *size)
{
    size_t hl = strlen(header);
    *size = 8 + hl + data_bytes;
    uint8_t *out = calloc(1, *size);
    put_le(out, hl, 8);
    memcpy(out + 8, header, hl);
    return out;
}

/* the TINY model with header edited: the text of tm_write with `from` replaced by `to` */
static uint8_t *tm_edit(const char *from, const char *to, size_t extra_data, size_t *size)
{
    tmodel tm;
    tm_build(&tm, &TINY, 0, 17);
    size_t n;
    uint8_t *d = tm_write(&tm, &n);
    tm_free(&tm);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | d[i];
    char *hdr = malloc(hl + 1);
    memcpy(hdr, d + 8, hl);
    hdr[hl] = 0;
    char *at = strstr(hdr, from);
    TU_CHECK(at != NULL, "tm_edit: '%s' not in the header", from);
    size_t dl = n - 8 - hl;
    size_t nh = hl - (at ? strlen(from) : 0) + (at ? strlen(to) : 0);
    *size = 8 + nh + dl + extra_data;
    uint8_t *out = calloc(1, *size);
    put_le(out, nh, 8);
    if (at) {
        size_t pre = (size_t)(at - hdr);
        memcpy(out + 8, hdr, pre);
        memcpy(out + 8 + pre, to, strlen(to));
        memcpy(out + 8 + pre + strlen(to), at + strlen(from), hl - pre - strlen(from));
    } else {
        memcpy(out + 8, hdr, hl);
    }
    memcpy(out + 8 + nh, d + 8 + hl, dl);
    free(hdr);
    free(d);
    return out;
}

/* the TINY model with `from` replaced by `to` in its header must fail with code and message */
static void expect_edit_fails(const char *label, const char *from, const char *to, int code,
                              const char *msg)
{
    size_t size;
    uint8_t *d = tm_edit(from, to, 0, &size);
    expect_fail(label, d, size, code, msg);
    free(d);
}

static void test_structure(void)
{
    size_t size;
    uint8_t *d;
    /* overlapping data_offsets: head.bias at the place of the first tensor (temb.fc1.weight,
     * [0, 256)), its own 32 bytes left as a hole */
    tmodel tm;
    tm_build(&tm, &TINY, 0, 19);
    m_reversed(&tm);
    tm.extra_entry = "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8], "
                     "\"data_offsets\": [0, 32]}";
    d = tm_write(&tm, &size);
    expect_fail("overlapping data_offsets", d, size, CTSR_E_FORMAT, "overlap");
    expect_fail("overlapping (names both)", d, size, CTSR_E_FORMAT, "temb.fc1.weight");
    free(d);
    /* two tensors at the same offsets, the data section one tensor shorter */
    tm.extra_entry = "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8], "
                     "\"data_offsets\": [256, 288]}";
    d = tm_write(&tm, &size);
    expect_fail("same data_offsets as another", d, size, CTSR_E_FORMAT, "overlap");
    free(d);
    tm_free(&tm);

    /* bytes after the last tensor, and a hole between two */
    d = tm_edit("{\"__metadata__\"", "{\"__metadata__\"", 4, &size);
    expect_fail("4 trailing data bytes", d, size, CTSR_E_FORMAT, "4 bytes after the last tensor");
    free(d);
    tm_build(&tm, &TINY, 0, 19);
    tm_find(&tm, "tail.bias")->omit = 1; /* written after the others, 48 bytes further on */
    tm.extra_entry = "\"tail.bias\": {\"dtype\": \"F32\", \"shape\": [12], "
                     "\"data_offsets\": [99999, 100047]}";
    d = tm_write(&tm, &size);
    /* make the extra entry point right after a gap of 16 bytes at the end of the data */
    {
        size_t dl0 = 0;
        for (int i = 0; i < tm.n; i++)
            if (!tm.t[i].omit)
                dl0 += tm.t[i].count * 4;
        char entry[256];
        snprintf(entry, sizeof entry, "\"tail.bias\": {\"dtype\": \"F32\", \"shape\": [12], "
                 "\"data_offsets\": [%zu, %zu]}", dl0 + 16, dl0 + 64);
        tm.extra_entry = entry;
        free(d);
        d = tm_write(&tm, &size);
        uint8_t *d2 = calloc(1, size + 64);
        memcpy(d2, d, size);
        expect_fail("hole between tensors", d2, size + 64, CTSR_E_FORMAT, "16 bytes before them");
        free(d2);
    }
    free(d);
    tm_free(&tm);

    /* a tensor name twice (json-glib keeps the last one) */
    expect_edit_fails("tensor name twice", "\"head.bias\": {",
                      "\"head.bias\": {\"dtype\": \"F32\", \"shape\": [8], "
                      "\"data_offsets\": [0, 32]}, \"head.bias\": {",
                      CTSR_E_FORMAT, "\"head.bias\" appears twice");
    /* __metadata__ twice, the second one harmless */
    expect_edit_fails("__metadata__ twice", "{\"__metadata__\"",
                      "{\"__metadata__\": {\"format\": \"other\"}, \"__metadata__\"",
                      CTSR_E_FORMAT, "\"__metadata__\" appears twice");
    /* a key twice inside a tensor entry and inside the config string */
    expect_edit_fails("dtype twice", "\"dtype\": \"F32\"", "\"dtype\": \"F16\", \"dtype\": \"F32\"",
                      CTSR_E_FORMAT, "\"dtype\" appears twice");
    expect_edit_fails("config key twice", "{\\\"act\\\": ", "{\\\"scale\\\": 4, \\\"act\\\": ",
                      CTSR_E_FORMAT, "\"scale\" appears twice");

    /* integers beyond 64 bits: reported with their text (json-glib reads them as -1 / 1) */
    expect_edit_fails("shape 1e20", "\"shape\": [8]", "\"shape\": [99999999999999999999]",
                      CTSR_E_FORMAT, "integer 99999999999999999999 does not fit");
    expect_edit_fails("data_offsets -2^64-1", "\"data_offsets\": [0, ",
                      "\"data_offsets\": [-18446744073709551617, ", CTSR_E_FORMAT,
                      "-18446744073709551617");
    expect_edit_fails("config integer 2^64+2", "\\\"blocks\\\": 2",
                      "\\\"blocks\\\": 18446744073709551618", CTSR_E_FORMAT,
                      "18446744073709551618");
    /* the limits themselves are integers, then out of range */
    expect_edit_fails("data_offsets 2^63-1", "\"data_offsets\": [0, ",
                      "\"data_offsets\": [9223372036854775807, ", CTSR_E_FORMAT,
                      "9223372036854775807");
    expect_edit_fails("data_offsets -2^63", "\"data_offsets\": [0, ",
                      "\"data_offsets\": [-9223372036854775808, ", CTSR_E_FORMAT,
                      "-9223372036854775808");
    /* a long one is cut in the message */
    char longnum[400] = "\"shape\": [";
    memset(longnum + strlen(longnum), '7', 300);
    strcat(longnum, "]");
    expect_edit_fails("300-digit integer", "\"shape\": [8]", longnum, CTSR_E_FORMAT, "777...");
    d = raw_model("{\"a\": 1e999}", 0, &size);
    expect_fail("float 1e999 (no __metadata__)", d, size, CTSR_E_FORMAT, "__metadata__");
    free(d);
}

/* A FIFO, a file that is not readable, and a file far longer than its header declares. */
static void test_files_hostile(void)
{
    const char *tmpdir = getenv("TMPDIR");
    char dir[4096], path[4200];
    char err[512];
    ctsr_model *m = (ctsr_model *)1;
    snprintf(dir, sizeof dir, "%s/ctsr-test-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    TU_EXPECT(mkdtemp(dir) != NULL, "mkdtemp %s", dir);
    chmod(dir, 0755);

    /* FIFO without a writer: must not block (the test's timeout catches a hang) */
    snprintf(path, sizeof path, "%s/fifo.safetensors", dir);
    TU_EXPECT(mkfifo(path, 0644) == 0, "mkfifo %s", path);
    int rc = ctsr_model_load_file(path, &m, err, sizeof err);
    TU_EXPECT(rc == CTSR_E_IO && !m && strstr(err, "FIFO") && strstr(err, path),
              "FIFO: %d %s", rc, err);
    printf("  %-28s -> %s\n", "FIFO", err);
    unlink(path);

    /* no read permission: as another user when run as root (root reads anything) */
    snprintf(path, sizeof path, "%s/noperm.safetensors", dir);
    {
        tmodel tm;
        size_t size;
        tm_build(&tm, &TINY, 0, 21);
        uint8_t *d = tm_write(&tm, &size);
        FILE *f = fopen(path, "wb");
        TU_EXPECT(f && fwrite(d, 1, size, f) == size, "write %s", path);
        if (f)
            fclose(f);
        free(d);
        tm_free(&tm);
        chmod(path, 0);
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
                _exit(3);
            ctsr_model *cm = NULL;
            int crc = ctsr_model_load_file(path, &cm, err, sizeof err);
            printf("  %-28s -> %s\n", "no read permission", err);
            fflush(stdout);
            _exit(crc == CTSR_E_IO && !cm && strstr(err, "Permission denied") ? 0 : 1);
        }
        int status = -1;
        waitpid(pid, &status, 0);
        TU_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "unreadable file: child status %d", status);
        unlink(path);
    }

    /* a valid model followed by 2 GiB of zeros (sparse): refused from the header's sizes,
     * without reading the file into memory */
    snprintf(path, sizeof path, "%s/big.safetensors", dir);
    {
        tmodel tm;
        size_t size;
        tm_build(&tm, &TINY, 0, 23);
        uint8_t *d = tm_write(&tm, &size);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        TU_EXPECT(fd >= 0 && write(fd, d, size) == (ssize_t)size, "write %s", path);
        TU_EXPECT(fd >= 0 && ftruncate(fd, (off_t)size + ((off_t)2 << 30)) == 0, "ftruncate");
        if (fd >= 0)
            close(fd);
        free(d);
        tm_free(&tm);
        struct rusage before, after;
        getrusage(RUSAGE_SELF, &before);
        rc = ctsr_model_load_file(path, &m, err, sizeof err);
        getrusage(RUSAGE_SELF, &after);
        TU_EXPECT(rc == CTSR_E_FORMAT && !m && strstr(err, "2147483648 bytes after the last tensor"),
                  "2 GiB of trailing zeros: %d %s", rc, err);
        printf("  %-28s -> %s\n", "2 GiB of trailing zeros", err);
        long grew_kb = after.ru_maxrss - before.ru_maxrss;
        TU_EXPECT(grew_kb < 64 * 1024, "loading read the file: max RSS grew by %ld KiB", grew_kb);
        unlink(path);
    }
    rmdir(dir);
}

int main(void)
{
    printf("valid files\n");
    test_valid_f32();
    test_valid_f16();
    printf("malformed files\n");
    test_malformed();
    printf("files\n");
    test_files();
    printf("non-finite and huge weights\n");
    test_nonfinite();
    test_huge_finite();
    printf("structurally invalid headers\n");
    test_structure();
    printf("hostile files\n");
    test_files_hostile();
    printf("config\n");
    test_config();
    printf("timestep MLP\n");
    test_film();
    printf("golden models\n");
    test_golden();
    return tu_finish("model-load", tu_passed);
}
