/* libctsr: loading a ctsr-student safetensors file, the config, and the timestep MLP.
 *
 * File layout (safetensors): u64 little-endian header length N, N bytes of JSON header,
 * then the tensor data. Every offset and size read from the file is checked before use;
 * a malformed file gives CTSR_E_FORMAT and a message, never a crash. */
#include "model.h"

#include "ctsr.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#define MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)
#define MAX_JSON_DEPTH 64
#define MAX_CHANNELS 256
#define MAX_MLP_RATIO 8
#define MAX_TEMB_DIM 1024
#define MAX_TEMB_HIDDEN 1024
#define MAX_HEADS 64
#define MAX_TEMB_SCALE 1e6

#define seterr ctsr_seterr

void ctsr_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- small helpers ---- */

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign; /* +-0 */
        } else {
            /* subnormal: mant * 2^-24; normalise into a float32 normal number */
            int e = -1;
            do {
                mant <<= 1;
                e++;
            } while (!(mant & 0x400));
            mant &= 0x3ff;
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | (mant << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf, or NaN keeping its payload */
    } else {
        bits = sign | ((exp + (127 - 15)) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint64_t read_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

/* Checks on the raw JSON text before json-glib sees it: the nesting depth of [ / { outside
 * strings (json-glib's parser is recursive, so a pathological header must not reach it), and
 * integer literals that do not fit in 64 bits (json-glib turns 99999999999999999999 into -1
 * and -99999999999999999999 into 1, so the value it reports would be wrong). */
static int json_prescan(const char *s, size_t n, const char *what, char *err, size_t errlen)
{
    int depth = 0, in_str = 0, esc = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = 0;
            else if (c == '\\')
                esc = 1;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '[' || c == '{') {
            if (++depth > MAX_JSON_DEPTH) {
                seterr(err, errlen, "%s: JSON nested deeper than %d levels", what,
                       MAX_JSON_DEPTH);
                return 0;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            /* a number token: an integer unless it has a fraction or an exponent */
            size_t j = i + (c == '-'), k;
            int integer = 1;
            for (k = j; k < n && strchr("0123456789.eE+-", s[k]) && s[k]; k++)
                if (s[k] == '.' || s[k] == 'e' || s[k] == 'E')
                    integer = 0;
            if (integer) {
                /* |value| <= 2^63 - 1 (or 2^63 when negative) */
                uint64_t v = 0, lim = c == '-' ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
                int over = 0;
                for (size_t d = j; d < k && !over; d++) {
                    if (s[d] < '0' || s[d] > '9')
                        break;
                    uint64_t digit = (uint64_t)(s[d] - '0');
                    if (v > (lim - digit) / 10)
                        over = 1;
                    else
                        v = v * 10 + digit;
                }
                if (over) {
                    int len = k - i > 48 ? 48 : (int)(k - i);
                    seterr(err, errlen, "%s: integer %.*s%s does not fit in 64 bits", what, len,
                           s + i, k - i > 48 ? "..." : "");
                    return 0;
                }
            }
            i = k - 1;
        }
    }
    return 1;
}

/* json-glib keeps the last of two members of the same name; its "object-member" signal
 * comes for every member parsed, so a duplicate is seen there. */
typedef struct dup_check {
    GHashTable *seen; /* "object pointer/name" */
    char *dup;        /* the first name seen twice */
} dup_check;

static void on_object_member(JsonParser *p, JsonObject *o, const char *name, gpointer data)
{
    dup_check *d = data;
    (void)p;
    if (d->dup)
        return;
    char *key = g_strdup_printf("%p/%s", (void *)o, name);
    if (g_hash_table_contains(d->seen, key)) {
        d->dup = g_strdup(name);
        g_free(key);
    } else {
        g_hash_table_add(d->seen, key);
    }
}

static int node_is_int(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64;
}

static int node_is_number(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) &&
           (json_node_get_value_type(n) == G_TYPE_INT64 ||
            json_node_get_value_type(n) == G_TYPE_DOUBLE);
}

static int node_is_string(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING;
}

/* Parse a JSON text into a parser; the root must be an object. */
static int parse_json_object(const char *text, size_t len, const char *what, JsonParser **out,
                             JsonObject **obj, char *err, size_t errlen)
{
    *out = NULL;
    *obj = NULL;
    if (len > (size_t)G_MAXSSIZE) {
        seterr(err, errlen, "%s: too large", what);
        return CTSR_E_FORMAT;
    }
    if (!json_prescan(text, len, what, err, errlen))
        return CTSR_E_FORMAT;
    JsonParser *p = json_parser_new();
    if (!p) {
        seterr(err, errlen, "%s: out of memory", what);
        return CTSR_E_NOMEM;
    }
    dup_check dup = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL), NULL};
    gulong handler = g_signal_connect(p, "object-member", G_CALLBACK(on_object_member), &dup);
    GError *gerr = NULL;
    gboolean parsed = json_parser_load_from_data(p, text, (gssize)len, &gerr);
    g_signal_handler_disconnect(p, handler);
    g_hash_table_destroy(dup.seen);
    if (!parsed) {
        seterr(err, errlen, "%s is not valid JSON: %s", what,
               gerr && gerr->message ? gerr->message : "parse error");
        if (gerr)
            g_error_free(gerr);
        g_free(dup.dup);
        g_object_unref(p);
        return CTSR_E_FORMAT;
    }
    if (dup.dup) {
        seterr(err, errlen, "%s: \"%.80s\" appears twice in one JSON object", what, dup.dup);
        g_free(dup.dup);
        g_object_unref(p);
        return CTSR_E_FORMAT;
    }
    JsonNode *root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        seterr(err, errlen, "%s is not a JSON object", what);
        g_object_unref(p);
        return CTSR_E_FORMAT;
    }
    *out = p;
    *obj = json_node_get_object(root);
    return 0;
}

/* ---- config ---- */

static int cfg_int(JsonObject *o, const char *key, int lo, int hi, int *val, char *err,
                   size_t errlen)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n) {
        seterr(err, errlen, "config lacks '%s'", key);
        return CTSR_E_FORMAT;
    }
    if (!node_is_int(n)) {
        seterr(err, errlen, "config '%s' must be an integer", key);
        return CTSR_E_FORMAT;
    }
    gint64 v = json_node_get_int(n);
    if (v < lo || v > hi) {
        seterr(err, errlen, "config '%s' = %lld out of range %d..%d", key, (long long)v, lo,
               hi);
        return CTSR_E_FORMAT;
    }
    *val = (int)v;
    return 0;
}

int ctsr_config_parse(const char *json, ctsr_config *cfg, char *err, size_t errlen)
{
    if (!json || !cfg) {
        seterr(err, errlen, "config: NULL argument");
        return CTSR_E_INVALID;
    }
    JsonParser *p;
    JsonObject *o;
    int rc = parse_json_object(json, strlen(json), "config", &p, &o, err, errlen);
    if (rc)
        return rc;

    ctsr_config c;
    memset(&c, 0, sizeof c);
    static const char *const need[] = {"scale",    "channels",  "blocks",      "attn_blocks",
                                       "window",   "heads",     "mlp_ratio",   "act",
                                       "temb_dim", "temb_hidden", "temb_scale"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (!json_object_has_member(o, need[i])) {
            seterr(err, errlen, "config lacks '%s'", need[i]);
            rc = CTSR_E_FORMAT;
            goto out;
        }
    }
    if ((rc = cfg_int(o, "scale", 2, 4, &c.scale, err, errlen)) ||
        (rc = cfg_int(o, "channels", 4, MAX_CHANNELS, &c.channels, err, errlen)) ||
        (rc = cfg_int(o, "blocks", 1, CTSR_MAX_BLOCKS, &c.blocks, err, errlen)) ||
        (rc = cfg_int(o, "window", 1, 16, &c.window, err, errlen)) ||
        (rc = cfg_int(o, "heads", 1, MAX_HEADS, &c.heads, err, errlen)) ||
        (rc = cfg_int(o, "mlp_ratio", 1, MAX_MLP_RATIO, &c.mlp_ratio, err, errlen)) ||
        (rc = cfg_int(o, "temb_dim", 2, MAX_TEMB_DIM, &c.temb_dim, err, errlen)) ||
        (rc = cfg_int(o, "temb_hidden", 1, MAX_TEMB_HIDDEN, &c.temb_hidden, err, errlen)))
        goto out;
    rc = CTSR_E_FORMAT;
    if (c.channels % 4) {
        seterr(err, errlen, "config 'channels' = %d: must be a positive multiple of 4",
               c.channels);
        goto out;
    }
    if (c.channels % c.heads || (c.channels / c.heads) % 4) {
        seterr(err, errlen, "config: channels/heads (%d/%d) must be a multiple of 4",
               c.channels, c.heads);
        goto out;
    }
    if (c.temb_dim % 2) {
        seterr(err, errlen, "config 'temb_dim' = %d must be even", c.temb_dim);
        goto out;
    }

    JsonNode *n = json_object_get_member(o, "act");
    if (!node_is_string(n)) {
        seterr(err, errlen, "config 'act' must be a string");
        goto out;
    }
    const char *act = json_node_get_string(n);
    if (!strcmp(act, "relu"))
        c.act = CTSR_ACT_RELU;
    else if (!strcmp(act, "lrelu"))
        c.act = CTSR_ACT_LRELU;
    else if (!strcmp(act, "silu"))
        c.act = CTSR_ACT_SILU;
    else {
        seterr(err, errlen, "config 'act' = \"%.32s\": act must be one of relu, lrelu, silu",
               act);
        goto out;
    }

    n = json_object_get_member(o, "temb_scale");
    if (!node_is_number(n)) {
        seterr(err, errlen, "config 'temb_scale' must be a number");
        goto out;
    }
    double ts = json_node_get_value_type(n) == G_TYPE_INT64 ? (double)json_node_get_int(n)
                                                             : json_node_get_double(n);
    if (!isfinite(ts) || ts <= 0.0 || ts > MAX_TEMB_SCALE) {
        seterr(err, errlen, "config 'temb_scale' = %g out of range (0, %g]", ts,
               MAX_TEMB_SCALE);
        goto out;
    }
    c.temb_scale = (float)ts;

    n = json_object_get_member(o, "attn_blocks");
    if (!n || !JSON_NODE_HOLDS_ARRAY(n)) {
        seterr(err, errlen, "config 'attn_blocks' must be an array of integers");
        goto out;
    }
    JsonArray *a = json_node_get_array(n);
    guint na = json_array_get_length(a);
    for (guint i = 0; i < na; i++) {
        JsonNode *e = json_array_get_element(a, i);
        if (!node_is_int(e)) {
            seterr(err, errlen, "config 'attn_blocks' must be an array of integers");
            goto out;
        }
        gint64 b = json_node_get_int(e);
        if (b < 0 || b >= c.blocks) {
            seterr(err, errlen, "config: attn_blocks out of range (block %lld, blocks = %d)",
                   (long long)b, c.blocks);
            goto out;
        }
        if (c.attn_mask & (1u << b)) {
            seterr(err, errlen, "config: attn_blocks lists block %lld twice", (long long)b);
            goto out;
        }
        c.attn_mask |= 1u << b;
    }
    *cfg = c;
    rc = 0;
out:
    g_object_unref(p);
    return rc;
}

double ctsr_config_macs_per_pixel(const ctsr_config *cfg)
{
    double c = cfg->channels, s = cfg->scale, w = cfg->window;
    double m = 9 * 3 * c + 9 * c * 3 * s * s + cfg->blocks * 2.0 * 9 * c * c;
    double hid = cfg->mlp_ratio * c;
    double per_attn = 3 * c * c + c * c + 2 * c * hid + 2 * w * w * c;
    int n_attn = 0;
    for (int b = 0; b < cfg->blocks && b < CTSR_MAX_BLOCKS; b++)
        n_attn += (int)((cfg->attn_mask >> (unsigned)b) & 1u);
    return m + n_attn * per_attn;
}

/* ---- expected tensors ---- */

typedef struct expected {
    char name[64];
    int rank;
    int64_t shape[4];
    size_t count;
    size_t offset; /* in floats, inside model->storage */
    float *dst;
    int found;
    uint64_t begin, end; /* data_offsets: bytes of the data section */
    int dsize;           /* bytes per element: 4 (F32) or 2 (F16) */
} expected;

typedef struct tensor_list {
    expected *e;
    int n, cap;
    size_t total;
} tensor_list;

static expected *add_tensor(tensor_list *l, const char *name, int rank, int64_t d0, int64_t d1,
                            int64_t d2, int64_t d3)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        expected *e = realloc(l->e, (size_t)cap * sizeof *e);
        if (!e)
            return NULL;
        l->e = e;
        l->cap = cap;
    }
    expected *t = &l->e[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rank = rank;
    int64_t d[4] = {d0, d1, d2, d3};
    t->count = 1;
    for (int i = 0; i < rank; i++) {
        t->shape[i] = d[i];
        t->count *= (size_t)d[i]; /* small: bounded by the config limits */
    }
    t->offset = l->total;
    l->total += t->count;
    return t;
}

/* A conv / linear layer: weight and bias; remembers where the pointers go. */
typedef struct slot {
    float **ptr;
    int idx;
} slot;

typedef struct builder {
    tensor_list list;
    slot *slots;
    int n_slots, cap_slots;
    int oom;
} builder;

static void want(builder *b, float **ptr, const char *name, int rank, int64_t d0, int64_t d1,
                 int64_t d2, int64_t d3)
{
    if (b->oom)
        return;
    expected *t = add_tensor(&b->list, name, rank, d0, d1, d2, d3);
    if (!t) {
        b->oom = 1;
        return;
    }
    if (b->n_slots == b->cap_slots) {
        int cap = b->cap_slots ? b->cap_slots * 2 : 64;
        slot *s = realloc(b->slots, (size_t)cap * sizeof *s);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->slots = s;
        b->cap_slots = cap;
    }
    b->slots[b->n_slots].ptr = ptr;
    b->slots[b->n_slots].idx = b->list.n - 1;
    b->n_slots++;
}

static void want_layer(builder *b, ctsr_layer *l, const char *prefix, int cout, int cin, int k,
                       int linear)
{
    char name[64];
    l->cout = cout;
    l->cin = cin;
    l->k = k;
    snprintf(name, sizeof name, "%s.weight", prefix);
    if (linear)
        want(b, &l->w, name, 2, cout, cin, 0, 0);
    else
        want(b, &l->w, name, 4, cout, cin, k, k);
    snprintf(name, sizeof name, "%s.bias", prefix);
    want(b, &l->b, name, 1, cout, 0, 0, 0);
}

static void build_expected(builder *b, ctsr_model *m)
{
    const ctsr_config *c = &m->cfg;
    int C = c->channels, M = c->temb_hidden, E = c->temb_dim, s = c->scale;
    int hC = c->mlp_ratio * C;
    char p[64], name[64];
    want_layer(b, &m->fc1, "temb.fc1", M, E, 1, 1);
    want_layer(b, &m->fc2, "temb.fc2", M, M, 1, 1);
    want_layer(b, &m->head, "head", C, 3, 3, 0);
    want_layer(b, &m->tail, "tail", 3 * s * s, C, 3, 0);
    for (int i = 0; i < c->blocks; i++) {
        ctsr_block *blk = &m->blocks[i];
        snprintf(p, sizeof p, "blocks.%d.conv1", i);
        want_layer(b, &blk->conv1, p, C, C, 3, 0);
        snprintf(p, sizeof p, "blocks.%d.conv2", i);
        want_layer(b, &blk->conv2, p, C, C, 3, 0);
        snprintf(p, sizeof p, "blocks.%d.film", i);
        want_layer(b, &blk->film, p, 2 * C, M, 1, 1);
        blk->has_attn = (c->attn_mask >> i) & 1;
        if (!blk->has_attn)
            continue;
        snprintf(name, sizeof name, "blocks.%d.attn.norm1.weight", i);
        want(b, &blk->ln1_w, name, 1, C, 0, 0, 0);
        snprintf(name, sizeof name, "blocks.%d.attn.norm1.bias", i);
        want(b, &blk->ln1_b, name, 1, C, 0, 0, 0);
        snprintf(p, sizeof p, "blocks.%d.attn.qkv", i);
        want_layer(b, &blk->qkv, p, 3 * C, C, 1, 0);
        snprintf(p, sizeof p, "blocks.%d.attn.proj", i);
        want_layer(b, &blk->proj, p, C, C, 1, 0);
        snprintf(name, sizeof name, "blocks.%d.attn.norm2.weight", i);
        want(b, &blk->ln2_w, name, 1, C, 0, 0, 0);
        snprintf(name, sizeof name, "blocks.%d.attn.norm2.bias", i);
        want(b, &blk->ln2_b, name, 1, C, 0, 0, 0);
        snprintf(p, sizeof p, "blocks.%d.attn.mlp1", i);
        want_layer(b, &blk->mlp1, p, hC, C, 1, 0);
        snprintf(p, sizeof p, "blocks.%d.attn.mlp2", i);
        want_layer(b, &blk->mlp2, p, C, hC, 1, 0);
    }
}

static void builder_free(builder *b)
{
    free(b->list.e);
    free(b->slots);
}

static void format_shape(char *buf, size_t n, const int64_t *shape, int rank)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int i = 0; i < rank && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

/* Validates one header entry against its expected tensor and the data_size bytes of the
 * data section; records where its data lies. */
static int check_tensor(const char *name, JsonNode *node, expected *e, uint64_t data_size,
                        char *err, size_t errlen)
{
    if (!node || !JSON_NODE_HOLDS_OBJECT(node)) {
        seterr(err, errlen, "tensor '%s': header entry is not an object", name);
        return CTSR_E_FORMAT;
    }
    JsonObject *o = json_node_get_object(node);
    JsonNode *dt = json_object_get_member(o, "dtype");
    JsonNode *sh = json_object_get_member(o, "shape");
    JsonNode *of = json_object_get_member(o, "data_offsets");
    if (!dt || !sh || !of) {
        seterr(err, errlen, "tensor '%s': header entry lacks '%s'", name,
               !dt ? "dtype" : !sh ? "shape" : "data_offsets");
        return CTSR_E_FORMAT;
    }
    if (!node_is_string(dt)) {
        seterr(err, errlen, "tensor '%s': dtype is not a string", name);
        return CTSR_E_FORMAT;
    }
    const char *dtype = json_node_get_string(dt);
    int dsize;
    if (!strcmp(dtype, "F32"))
        dsize = 4;
    else if (!strcmp(dtype, "F16"))
        dsize = 2;
    else {
        seterr(err, errlen, "tensor '%s': unsupported dtype \"%.32s\" (F32 or F16 expected)",
               name, dtype);
        return CTSR_E_FORMAT;
    }

    if (!JSON_NODE_HOLDS_ARRAY(sh)) {
        seterr(err, errlen, "tensor '%s': shape is not an array", name);
        return CTSR_E_FORMAT;
    }
    JsonArray *sa = json_node_get_array(sh);
    guint rank = json_array_get_length(sa);
    int64_t found[8];
    for (guint i = 0; i < rank; i++) {
        JsonNode *d = json_array_get_element(sa, i);
        if (!node_is_int(d) || json_node_get_int(d) < 0) {
            seterr(err, errlen, "tensor '%s': shape must hold non-negative integers", name);
            return CTSR_E_FORMAT;
        }
        int64_t v = json_node_get_int(d);
        if (i < 8)
            found[i] = v;
    }
    int same = (int)rank == e->rank;
    for (int i = 0; same && i < e->rank; i++)
        same = found[i] == e->shape[i];
    if (!same) {
        char exp_s[96], got_s[96];
        format_shape(exp_s, sizeof exp_s, e->shape, e->rank);
        if (rank <= 8)
            format_shape(got_s, sizeof got_s, found, (int)rank);
        else
            snprintf(got_s, sizeof got_s, "(rank %u)", rank);
        seterr(err, errlen, "tensor '%s': wrong shape: expected %s, found %s", name, exp_s,
               got_s);
        return CTSR_E_FORMAT;
    }
    /* the shape equals the expected one (bounded by the config limits), so the element
     * count is e->count and cannot overflow */

    if (!JSON_NODE_HOLDS_ARRAY(of) || json_array_get_length(json_node_get_array(of)) != 2 ||
        !node_is_int(json_array_get_element(json_node_get_array(of), 0)) ||
        !node_is_int(json_array_get_element(json_node_get_array(of), 1))) {
        seterr(err, errlen, "tensor '%s': data_offsets must be two integers", name);
        return CTSR_E_FORMAT;
    }
    JsonArray *oa = json_node_get_array(of);
    int64_t begin = json_node_get_int(json_array_get_element(oa, 0));
    int64_t end = json_node_get_int(json_array_get_element(oa, 1));
    if (begin < 0 || end < 0 || begin > end) {
        seterr(err, errlen, "tensor '%s': bad data_offsets [%lld, %lld]", name,
               (long long)begin, (long long)end);
        return CTSR_E_FORMAT;
    }
    uint64_t nbytes;
    if (!mul_ok((uint64_t)e->count, (uint64_t)dsize, &nbytes) ||
        (uint64_t)(end - begin) != nbytes) {
        char shape_s[96];
        format_shape(shape_s, sizeof shape_s, e->shape, e->rank);
        seterr(err, errlen,
               "tensor '%s': data_offsets [%lld, %lld] span %llu bytes but %s %s needs %llu",
               name, (long long)begin, (long long)end, (unsigned long long)(end - begin),
               dtype, shape_s, (unsigned long long)e->count * (unsigned long long)dsize);
        return CTSR_E_FORMAT;
    }
    if ((uint64_t)end > data_size) {
        seterr(err, errlen,
               "tensor '%s': data_offsets [%lld, %lld] beyond the %llu data bytes "
               "(file truncated?)",
               name, (long long)begin, (long long)end, (unsigned long long)data_size);
        return CTSR_E_FORMAT;
    }
    e->begin = (uint64_t)begin;
    e->end = (uint64_t)end;
    e->dsize = dsize;
    return 0;
}

static const char *nonfinite_name(float v)
{
    return isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf";
}

/* Converts a checked tensor's data (little-endian F32 or F16) into e->dst; non-finite values
 * are refused: the network would turn them into NaN, a black frame. */
static int copy_tensor(const expected *e, const uint8_t *data, char *err, size_t errlen)
{
    const uint8_t *src = data + e->begin;
    if (e->dsize == 4) {
        for (size_t i = 0; i < e->count; i++) {
            uint32_t bits = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                            (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
            memcpy(&e->dst[i], &bits, 4);
        }
    } else {
        for (size_t i = 0; i < e->count; i++)
            e->dst[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
    }
    for (size_t i = 0; i < e->count; i++)
        if (!isfinite(e->dst[i])) {
            seterr(err, errlen, "tensor '%s': element %zu is %s (weights must be finite)",
                   e->name, i, nonfinite_name(e->dst[i]));
            return CTSR_E_FORMAT;
        }
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const expected *x = *(const expected *const *)a, *y = *(const expected *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* The tensors must cover the data section exactly, as in the safetensors specification: no
 * two overlap, no bytes between or after them. */
static int check_layout(tensor_list *l, uint64_t data_size, char *err, size_t errlen)
{
    int rc = 0;
    expected **order = l->n > 0 ? malloc((size_t)l->n * sizeof *order) : NULL;
    if (l->n <= 0) {
        seterr(err, errlen, "the model has no tensors");
        return CTSR_E_FORMAT;
    }
    if (!order) {
        seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    for (int i = 0; i < l->n; i++)
        order[i] = &l->e[i];
    qsort(order, (size_t)l->n, sizeof *order, cmp_begin);
    uint64_t pos = 0;
    for (int i = 0; i < l->n && !rc; i++) {
        const expected *e = order[i];
        if (e->begin < pos) {
            seterr(err, errlen,
                   "tensor '%s': data_offsets [%llu, %llu] overlap those of tensor '%s' "
                   "[%llu, %llu]", e->name, (unsigned long long)e->begin,
                   (unsigned long long)e->end, order[i - 1]->name,
                   (unsigned long long)order[i - 1]->begin, (unsigned long long)order[i - 1]->end);
            rc = CTSR_E_FORMAT;
        } else if (e->begin > pos) {
            seterr(err, errlen,
                   "tensor '%s': data_offsets [%llu, %llu] leave %llu bytes before them that "
                   "belong to no tensor", e->name, (unsigned long long)e->begin,
                   (unsigned long long)e->end, (unsigned long long)(e->begin - pos));
            rc = CTSR_E_FORMAT;
        }
        pos = e->end;
    }
    if (!rc && pos != data_size) {
        seterr(err, errlen,
               "the file has %llu bytes after the last tensor's data (the header declares "
               "%llu data bytes, the file holds %llu)", (unsigned long long)(data_size - pos),
               (unsigned long long)pos, (unsigned long long)data_size);
        rc = CTSR_E_FORMAT;
    }
    free(order);
    return rc;
}

void ctsr_model_free(ctsr_model *m)
{
    if (!m)
        return;
    free(m->storage);
    free(m->config_json);
    free(m->provenance);
    free(m);
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* A parsed and checked header: the model with its storage allocated, every tensor's place in
 * the data section known, no data read yet. */
typedef struct header {
    JsonParser *parser;
    ctsr_model *m;
    builder b;
} header;

static void header_clear(header *h)
{
    builder_free(&h->b);
    ctsr_model_free(h->m);
    if (h->parser)
        g_object_unref(h->parser);
    memset(h, 0, sizeof *h);
}

/* The 8-byte header length against the limit and the file size. */
static int check_header_length(uint64_t hlen, uint64_t size, char *err, size_t errlen)
{
    if (hlen > MAX_HEADER_BYTES) {
        seterr(err, errlen, "model header length %llu exceeds the limit of %llu bytes",
               (unsigned long long)hlen, (unsigned long long)MAX_HEADER_BYTES);
        return CTSR_E_FORMAT;
    }
    if (hlen > size - 8) {
        seterr(err, errlen,
               "model file truncated: header length %llu exceeds the %llu bytes after it",
               (unsigned long long)hlen, (unsigned long long)(size - 8));
        return CTSR_E_FORMAT;
    }
    return 0;
}

/* Parses the JSON header (hlen bytes) of a file whose data section holds data_size bytes and
 * checks everything it says: metadata, config, and every tensor entry against the config and
 * the data section. */
static int header_parse(const uint8_t *text, uint64_t hlen, uint64_t data_size, header *h,
                        char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    JsonObject *root = NULL;
    int rc = parse_json_object((const char *)text, (size_t)hlen, "model header", &h->parser,
                               &root, err, errlen);
    if (rc)
        return rc;

    ctsr_model *m = NULL;
    builder b;
    memset(&b, 0, sizeof b);
    rc = CTSR_E_FORMAT;

    JsonNode *mn = json_object_get_member(root, "__metadata__");
    if (!mn) {
        seterr(err, errlen, "model header lacks __metadata__ (not a ctsr-student file)");
        goto fail;
    }
    if (!JSON_NODE_HOLDS_OBJECT(mn)) {
        seterr(err, errlen, "model __metadata__ is not an object");
        goto fail;
    }
    JsonObject *meta = json_node_get_object(mn);
    static const char *const keys[] = {"format", "format_version", "config", "provenance"};
    const char *vals[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        JsonNode *n = json_object_get_member(meta, keys[i]);
        if (!n)
            continue;
        if (!node_is_string(n)) {
            seterr(err, errlen, "model __metadata__ '%s' is not a string", keys[i]);
            goto fail;
        }
        vals[i] = json_node_get_string(n);
    }
    if (!vals[0]) {
        seterr(err, errlen, "model __metadata__ lacks 'format' (not a %s file)",
               CTSR_FORMAT_NAME);
        goto fail;
    }
    if (strcmp(vals[0], CTSR_FORMAT_NAME)) {
        seterr(err, errlen, "model format is \"%.64s\", expected \"%s\"", vals[0],
               CTSR_FORMAT_NAME);
        goto fail;
    }
    if (!vals[1]) {
        seterr(err, errlen, "model __metadata__ lacks 'format_version'");
        goto fail;
    }
    char want_version[16];
    snprintf(want_version, sizeof want_version, "%d", CTSR_FORMAT_VERSION);
    if (strcmp(vals[1], want_version)) {
        seterr(err, errlen,
               "unsupported model format_version \"%.32s\" (this library supports version %d)",
               vals[1], CTSR_FORMAT_VERSION);
        goto fail;
    }
    if (!vals[2]) {
        seterr(err, errlen, "model __metadata__ lacks 'config'");
        goto fail;
    }

    m = calloc(1, sizeof *m);
    if (!m) {
        rc = CTSR_E_NOMEM;
        seterr(err, errlen, "out of memory");
        goto fail;
    }
    char cerr[256] = "";
    rc = ctsr_config_parse(vals[2], &m->cfg, cerr, sizeof cerr);
    if (rc) {
        if (rc == CTSR_E_INVALID)
            rc = CTSR_E_FORMAT;
        seterr(err, errlen, "model %s", cerr);
        goto fail;
    }
    m->format_version = CTSR_FORMAT_VERSION;
    m->config_json = xstrdup(vals[2]);
    m->provenance = xstrdup(vals[3] ? vals[3] : "");
    build_expected(&b, m);
    if (b.oom || !m->config_json || !m->provenance) {
        rc = CTSR_E_NOMEM;
        seterr(err, errlen, "out of memory");
        goto fail;
    }
    m->n_params = b.list.total;
    m->storage = malloc((b.list.total ? b.list.total : 1) * sizeof(float));
    if (!m->storage) {
        rc = CTSR_E_NOMEM;
        seterr(err, errlen, "out of memory (%zu weights)", b.list.total);
        goto fail;
    }
    for (int i = 0; i < b.list.n; i++)
        b.list.e[i].dst = m->storage + b.list.e[i].offset;
    for (int i = 0; i < b.n_slots; i++)
        *b.slots[i].ptr = b.list.e[b.slots[i].idx].dst;

    rc = CTSR_E_FORMAT;
    GList *members = json_object_get_members(root);
    for (GList *it = members; it; it = it->next) {
        const char *name = it->data;
        if (!strcmp(name, "__metadata__"))
            continue;
        expected *e = NULL;
        for (int i = 0; i < b.list.n; i++) {
            if (!strcmp(b.list.e[i].name, name)) {
                e = &b.list.e[i];
                break;
            }
        }
        if (!e) {
            seterr(err, errlen, "unexpected extra tensor '%.80s' for this config", name);
            g_list_free(members);
            goto fail;
        }
        if (e->found) { /* json-glib keeps one member per name; defensive */
            seterr(err, errlen, "tensor '%s' appears twice", name);
            g_list_free(members);
            goto fail;
        }
        int r = check_tensor(name, json_object_get_member(root, name), e, data_size, err, errlen);
        if (r) {
            rc = r;
            g_list_free(members);
            goto fail;
        }
        e->found = 1;
    }
    g_list_free(members);
    for (int i = 0; i < b.list.n; i++) {
        if (!b.list.e[i].found) {
            seterr(err, errlen, "missing tensor '%s'", b.list.e[i].name);
            goto fail;
        }
    }
    if ((rc = check_layout(&b.list, data_size, err, errlen)))
        goto fail;
    h->m = m;
    h->b = b;
    return 0;

fail:
    builder_free(&b);
    ctsr_model_free(m);
    g_object_unref(h->parser);
    h->parser = NULL;
    return rc;
}

/* Copies the data section (the size header_parse was given) into the model and checks that
 * the network computes finite values with it; on success the caller owns h->m. */
static int header_load_data(header *h, const uint8_t *data, char *err, size_t errlen)
{
    int rc;
    for (int i = 0; i < h->b.list.n; i++)
        if ((rc = copy_tensor(&h->b.list.e[i], data, err, errlen)))
            return rc;
    return ctsr_model_probe(h->m, err, errlen);
}

int ctsr_model_load_memory(const void *data_, size_t size, ctsr_model **out, char *err,
                           size_t errlen)
{
    const uint8_t *data = data_;
    header h;
    int rc;
    if (err && errlen)
        err[0] = 0;
    if (!out) {
        seterr(err, errlen, "model: NULL output argument");
        return CTSR_E_INVALID;
    }
    *out = NULL;
    if (!data && size) {
        seterr(err, errlen, "model: NULL data");
        return CTSR_E_INVALID;
    }
    if (size < 8) {
        seterr(err, errlen, "model file truncated: %zu bytes, the 8-byte header length is "
                            "missing", size);
        return CTSR_E_FORMAT;
    }
    uint64_t hlen = read_u64le(data);
    if ((rc = check_header_length(hlen, size, err, errlen)))
        return rc;
    if ((rc = header_parse(data + 8, hlen, (uint64_t)(size - 8 - hlen), &h, err, errlen)))
        return rc;
    if ((rc = header_load_data(&h, data + 8 + hlen, err, errlen))) {
        header_clear(&h);
        return rc;
    }
    *out = h.m;
    h.m = NULL;
    header_clear(&h);
    return 0;
}

/* Reads n bytes at the current position; 0, or -1 with errno (EIO for a short read: the
 * file shrank). */
static int read_full(int fd, void *buf, size_t n, size_t *got)
{
    uint8_t *p = buf;
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, p + *got, n - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 0; /* end of file: the caller sees *got < n */
        *got += (size_t)r;
    }
    return 0;
}

int ctsr_model_load_file(const char *path, ctsr_model **out, char *err, size_t errlen)
{
    header h;
    memset(&h, 0, sizeof h);
    uint8_t len8[8], *text = NULL, *data = NULL;
    char lerr[512] = "";
    struct stat st;
    uint64_t size, hlen, data_size;
    size_t got;
    int rc, fd = -1;
    memset(&st, 0, sizeof st);
    if (out)
        *out = NULL;
    if (!path || !out) {
        seterr(err, errlen, "model: NULL argument");
        return CTSR_E_INVALID;
    }
    /* O_NONBLOCK: opening a FIFO without a writer must not wait; nothing but a regular
     * file is read */
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        goto io_error;
    if (fstat(fd, &st))
        goto io_error;
    if (!S_ISREG(st.st_mode))
        goto not_regular;
    if (st.st_size < 8) {
        seterr(err, errlen, "%s: model file truncated: %lld bytes, the 8-byte header length "
               "is missing", path, (long long)st.st_size);
        rc = CTSR_E_FORMAT;
        goto fail;
    }
    size = (uint64_t)st.st_size;
    /* the header first; the file may hold only what the header declares */
    if (read_full(fd, len8, 8, &got))
        goto io_error;
    if (got < 8)
        goto shrank;
    hlen = read_u64le(len8);
    if ((rc = check_header_length(hlen, size, lerr, sizeof lerr)))
        goto format_error;
    text = malloc(hlen ? (size_t)hlen : 1);
    if (!text)
        goto nomem;
    if (read_full(fd, text, (size_t)hlen, &got))
        goto io_error;
    if (got < hlen)
        goto shrank;
    data_size = size - 8 - hlen;
    if ((rc = header_parse(text, hlen, data_size, &h, lerr, sizeof lerr)))
        goto format_error;
    free(text);
    text = NULL;
    /* data_size now equals what the tensors of the config need */
    if (data_size > SIZE_MAX || !(data = malloc(data_size ? (size_t)data_size : 1)))
        goto nomem;
    if (read_full(fd, data, (size_t)data_size, &got))
        goto io_error;
    if (got < data_size)
        goto shrank;
    if ((rc = header_load_data(&h, data, lerr, sizeof lerr)))
        goto format_error;
    *out = h.m;
    h.m = NULL;
    rc = 0;
    goto done;

io_error:
    seterr(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
    rc = CTSR_E_IO;
    goto fail;
not_regular:
    seterr(err, errlen, "%s: %s", path,
           S_ISDIR(st.st_mode) ? strerror(EISDIR)
           : S_ISFIFO(st.st_mode) ? "not a regular file (a FIFO)"
           : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "not a regular file (a device)"
           : S_ISSOCK(st.st_mode) ? "not a regular file (a socket)"
                                  : "not a regular file");
    rc = CTSR_E_IO;
    goto fail;
shrank:
    seterr(err, errlen, "%s: model file truncated while being read (%lld bytes at open)", path,
           (long long)st.st_size);
    rc = CTSR_E_FORMAT;
    goto fail;
nomem:
    seterr(err, errlen, "%s: out of memory", path);
    rc = CTSR_E_NOMEM;
    goto fail;
format_error:
    seterr(err, errlen, "%s: %s", path, lerr);
    goto fail;
fail:
done:
    header_clear(&h);
    free(text);
    free(data);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- the finite-output probe ---- */

int ctsr_model_probe(const ctsr_model *m, char *err, size_t errlen)
{
    /* 8 x 8 pixels of every kind a frame has: black, white, saturated colours, edges, a
     * gradient (small: the default model takes about 20 MMAC for the three timesteps) */
    const int n = 8, s = m->cfg.scale;
    float *img = malloc((size_t)n * n * 3 * sizeof *img);
    float *out = malloc((size_t)n * n * s * s * 3 * sizeof *out);
    int rc = 0;
    if (!img || !out) {
        seterr(err, errlen, "out of memory");
        rc = CTSR_E_NOMEM;
        goto done;
    }
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++)
            for (int c = 0; c < 3; c++) {
                float v;
                switch ((x / 2 + y / 2 + c) % 4) {
                case 0: v = 0.0f; break;
                case 1: v = 1.0f; break;
                default: v = (float)(x * n + y) / (float)(n * n - 1); break;
                }
                img[((size_t)y * n + x) * 3 + c] = v;
            }
    static const float ts[] = {0.0f, 0.5f, 1.0f};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0] && !rc; i++) {
        rc = ctsr_ref_forward(m, ts[i], img, n, n, out);
        if (rc == CTSR_E_FORMAT)
            seterr(err, errlen, "the network computes non-finite values at timestep %g "
                   "(weights too large: the activations overflow and every frame would come "
                   "out black)", (double)ts[i]);
        else if (rc)
            seterr(err, errlen, "out of memory");
    }
done:
    free(img);
    free(out);
    return rc;
}

/* ---- timestep MLP ---- */

static float silu_f(float x)
{
    return x / (1.0f + expf(-x));
}

static void linear(const ctsr_layer *l, const float *in, float *out)
{
    for (int o = 0; o < l->cout; o++) {
        double acc = l->b[o];
        const float *w = l->w + (size_t)o * l->cin;
        for (int i = 0; i < l->cin; i++)
            acc += (double)w[i] * in[i];
        out[o] = (float)acc;
    }
}

void ctsr_model_film(const ctsr_model *m, float t, float *film)
{
    const ctsr_config *c = &m->cfg;
    int E = c->temb_dim, M = c->temb_hidden, C = c->channels, half = E / 2;
    if (!(t >= 0.0f))
        t = 0.0f; /* also NaN */
    if (t > 1.0f)
        t = 1.0f;
    float emb[MAX_TEMB_DIM], h1[MAX_TEMB_HIDDEN], z[MAX_TEMB_HIDDEN];
    /* timestep_embedding, step by step in float32 as PyTorch does it:
     * freqs = exp((-ln(1e4) * i) / half); arg = (t * scale) * freqs */
    const float nl = (float)-log(10000.0);
    const float ts = t * c->temb_scale;
    for (int i = 0; i < half; i++) {
        float f = (float)exp((double)((nl * (float)i) / (float)half));
        float arg = ts * f;
        emb[i] = (float)sin((double)arg);
        emb[half + i] = (float)cos((double)arg);
    }
    linear(&m->fc1, emb, h1);
    for (int i = 0; i < M; i++)
        h1[i] = silu_f(h1[i]);
    linear(&m->fc2, h1, z);
    for (int i = 0; i < M; i++)
        z[i] = silu_f(z[i]);
    for (int b = 0; b < c->blocks; b++)
        linear(&m->blocks[b].film, z, film + (size_t)b * 2 * C);
}
