/* libctsr: the safetensors reader (safetensors.h). */
#include "safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctsr.h"
#include "error.h"
#include "fp16.h"
#include "json-strict.h"

ctsr_st_tensor *ctsr_st_add(ctsr_st_list *l, const char *name, int rank, const int64_t *dims)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        ctsr_st_tensor *e = realloc(l->e, (size_t)cap * sizeof *e);
        if (!e)
            return NULL;
        l->e = e;
        l->cap = cap;
    }
    ctsr_st_tensor *t = &l->e[l->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rank = rank;
    t->count = 1;
    for (int i = 0; i < rank; i++) {
        t->shape[i] = dims[i];
        t->count *= (size_t)dims[i]; /* small: bounded by the config limits */
    }
    t->offset = l->total;
    l->total += t->count;
    return t;
}

void ctsr_st_list_free(ctsr_st_list *l)
{
    free(l->e);
    memset(l, 0, sizeof *l);
}

void ctsr_st_bind(ctsr_st_list *l, float *storage)
{
    for (int i = 0; i < l->n; i++) {
        l->e[i].dst = storage + l->e[i].offset;
        if (l->e[i].bind)
            *l->e[i].bind = l->e[i].dst;
    }
}

uint64_t ctsr_st_read_u64le(const uint8_t *p)
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

int ctsr_st_check_header_length(uint64_t hlen, uint64_t size, char *err, size_t errlen)
{
    if (hlen > CTSR_ST_MAX_HEADER_BYTES) {
        ctsr_seterr(err, errlen, "model header length %llu exceeds the limit of %llu bytes",
                    (unsigned long long)hlen, (unsigned long long)CTSR_ST_MAX_HEADER_BYTES);
        return CTSR_E_FORMAT;
    }
    if (hlen > size - 8) {
        ctsr_seterr(err, errlen,
                    "model file truncated: header length %llu exceeds the %llu bytes after it",
                    (unsigned long long)hlen, (unsigned long long)(size - 8));
        return CTSR_E_FORMAT;
    }
    return 0;
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

/* "dtype": F32 or F16 -> *dsize 4 or 2 */
static int check_dtype(const char *name, JsonNode *dt, int *dsize, char *err, size_t errlen)
{
    if (!ctsr_json_is_string(dt)) {
        ctsr_seterr(err, errlen, "tensor '%s': dtype is not a string", name);
        return CTSR_E_FORMAT;
    }
    const char *dtype = json_node_get_string(dt);
    if (!strcmp(dtype, "F32"))
        *dsize = 4;
    else if (!strcmp(dtype, "F16"))
        *dsize = 2;
    else {
        ctsr_seterr(err, errlen,
                    "tensor '%s': unsupported dtype \"%.32s\" (F32 or F16 expected)", name,
                    dtype);
        return CTSR_E_FORMAT;
    }
    return 0;
}

/* "shape": exactly the expected one */
static int check_shape(const char *name, JsonNode *sh, const ctsr_st_tensor *e, char *err,
                       size_t errlen)
{
    if (!JSON_NODE_HOLDS_ARRAY(sh)) {
        ctsr_seterr(err, errlen, "tensor '%s': shape is not an array", name);
        return CTSR_E_FORMAT;
    }
    JsonArray *sa = json_node_get_array(sh);
    guint rank = json_array_get_length(sa);
    int64_t found[8];
    for (guint i = 0; i < rank; i++) {
        JsonNode *d = json_array_get_element(sa, i);
        if (!ctsr_json_is_int(d) || json_node_get_int(d) < 0) {
            ctsr_seterr(err, errlen, "tensor '%s': shape must hold non-negative integers",
                        name);
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
        ctsr_seterr(err, errlen, "tensor '%s': wrong shape: expected %s, found %s", name,
                    exp_s, got_s);
        return CTSR_E_FORMAT;
    }
    return 0;
}

/* "data_offsets": [begin, end] spanning count * dsize bytes inside the data section. The
 * shape equals the expected one (bounded by the config limits), so e->count cannot
 * overflow. */
static int check_offsets(const char *name, JsonNode *of, const ctsr_st_tensor *e,
                         const char *dtype, int dsize, uint64_t data_size, int64_t range[2],
                         char *err, size_t errlen)
{
    if (!JSON_NODE_HOLDS_ARRAY(of) || json_array_get_length(json_node_get_array(of)) != 2 ||
        !ctsr_json_is_int(json_array_get_element(json_node_get_array(of), 0)) ||
        !ctsr_json_is_int(json_array_get_element(json_node_get_array(of), 1))) {
        ctsr_seterr(err, errlen, "tensor '%s': data_offsets must be two integers", name);
        return CTSR_E_FORMAT;
    }
    JsonArray *oa = json_node_get_array(of);
    int64_t begin = json_node_get_int(json_array_get_element(oa, 0));
    int64_t end = json_node_get_int(json_array_get_element(oa, 1));
    if (begin < 0 || end < 0 || begin > end) {
        ctsr_seterr(err, errlen, "tensor '%s': bad data_offsets [%lld, %lld]", name,
                    (long long)begin, (long long)end);
        return CTSR_E_FORMAT;
    }
    uint64_t nbytes;
    if (!mul_ok((uint64_t)e->count, (uint64_t)dsize, &nbytes) ||
        (uint64_t)(end - begin) != nbytes) {
        char shape_s[96];
        format_shape(shape_s, sizeof shape_s, e->shape, e->rank);
        ctsr_seterr(err, errlen,
                    "tensor '%s': data_offsets [%lld, %lld] span %llu bytes but %s %s needs %llu",
                    name, (long long)begin, (long long)end, (unsigned long long)(end - begin),
                    dtype, shape_s, (unsigned long long)e->count * (unsigned long long)dsize);
        return CTSR_E_FORMAT;
    }
    if ((uint64_t)end > data_size) {
        ctsr_seterr(err, errlen,
                    "tensor '%s': data_offsets [%lld, %lld] beyond the %llu data bytes "
                    "(file truncated?)",
                    name, (long long)begin, (long long)end, (unsigned long long)data_size);
        return CTSR_E_FORMAT;
    }
    range[0] = begin;
    range[1] = end;
    return 0;
}

/* Validates one header entry against its expected tensor; records where its data lies. */
static int check_tensor(const char *name, JsonNode *node, ctsr_st_tensor *e, uint64_t data_size,
                        char *err, size_t errlen)
{
    if (!node || !JSON_NODE_HOLDS_OBJECT(node)) {
        ctsr_seterr(err, errlen, "tensor '%s': header entry is not an object", name);
        return CTSR_E_FORMAT;
    }
    JsonObject *o = json_node_get_object(node);
    JsonNode *dt = json_object_get_member(o, "dtype");
    JsonNode *sh = json_object_get_member(o, "shape");
    JsonNode *of = json_object_get_member(o, "data_offsets");
    if (!dt || !sh || !of) {
        ctsr_seterr(err, errlen, "tensor '%s': header entry lacks '%s'", name,
                    !dt ? "dtype" : !sh ? "shape" : "data_offsets");
        return CTSR_E_FORMAT;
    }
    int dsize, rc;
    int64_t range[2];
    if ((rc = check_dtype(name, dt, &dsize, err, errlen)) ||
        (rc = check_shape(name, sh, e, err, errlen)) ||
        (rc = check_offsets(name, of, e, json_node_get_string(dt), dsize, data_size, range,
                            err, errlen)))
        return rc;
    e->begin = (uint64_t)range[0];
    e->end = (uint64_t)range[1];
    e->dsize = dsize;
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const ctsr_st_tensor *x = *(const ctsr_st_tensor *const *)a;
    const ctsr_st_tensor *y = *(const ctsr_st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* The tensors must cover the data section exactly, as in the safetensors specification: no
 * two overlap, no bytes between or after them. */
static int check_layout(const ctsr_st_list *l, uint64_t data_size, char *err, size_t errlen)
{
    if (l->n <= 0) {
        ctsr_seterr(err, errlen, "the model has no tensors");
        return CTSR_E_FORMAT;
    }
    const ctsr_st_tensor **order = malloc((size_t)l->n * sizeof *order);
    if (!order) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    for (int i = 0; i < l->n; i++)
        order[i] = &l->e[i];
    qsort(order, (size_t)l->n, sizeof *order, cmp_begin);
    uint64_t pos = 0;
    int rc = 0;
    for (int i = 0; i < l->n && !rc; i++) {
        const ctsr_st_tensor *e = order[i];
        if (e->begin < pos) {
            ctsr_seterr(err, errlen,
                        "tensor '%s': data_offsets [%llu, %llu] overlap those of tensor '%s' "
                        "[%llu, %llu]", e->name, (unsigned long long)e->begin,
                        (unsigned long long)e->end, order[i - 1]->name,
                        (unsigned long long)order[i - 1]->begin,
                        (unsigned long long)order[i - 1]->end);
            rc = CTSR_E_FORMAT;
        } else if (e->begin > pos) {
            ctsr_seterr(err, errlen,
                        "tensor '%s': data_offsets [%llu, %llu] leave %llu bytes before them "
                        "that belong to no tensor", e->name, (unsigned long long)e->begin,
                        (unsigned long long)e->end, (unsigned long long)(e->begin - pos));
            rc = CTSR_E_FORMAT;
        }
        pos = e->end;
    }
    if (!rc && pos != data_size) {
        ctsr_seterr(err, errlen,
                    "the file has %llu bytes after the last tensor's data (the header declares "
                    "%llu data bytes, the file holds %llu)",
                    (unsigned long long)(data_size - pos), (unsigned long long)pos,
                    (unsigned long long)data_size);
        rc = CTSR_E_FORMAT;
    }
    free(order);
    return rc;
}

static ctsr_st_tensor *find(ctsr_st_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->e[i].name, name))
            return &l->e[i];
    return NULL;
}

/* Every member of the header but __metadata__: an expected tensor, seen once, valid. */
static int match_members(JsonObject *header, ctsr_st_list *l, uint64_t data_size, char *err,
                         size_t errlen)
{
    int rc = 0;
    GList *members = json_object_get_members(header);
    for (GList *it = members; it && !rc; it = it->next) {
        const char *name = it->data;
        if (!strcmp(name, "__metadata__"))
            continue;
        ctsr_st_tensor *e = find(l, name);
        if (!e) {
            ctsr_seterr(err, errlen, "unexpected extra tensor '%.80s' for this config", name);
            rc = CTSR_E_FORMAT;
        } else if (e->found) { /* json-glib keeps one member per name; defensive */
            ctsr_seterr(err, errlen, "tensor '%s' appears twice", name);
            rc = CTSR_E_FORMAT;
        } else if (!(rc = check_tensor(name, json_object_get_member(header, name), e,
                                       data_size, err, errlen))) {
            e->found = 1;
        }
    }
    g_list_free(members);
    return rc;
}

int ctsr_st_match(JsonObject *header, ctsr_st_list *l, uint64_t data_size, char *err,
                  size_t errlen)
{
    int rc = match_members(header, l, data_size, err, errlen);
    if (rc)
        return rc;
    for (int i = 0; i < l->n; i++) {
        if (!l->e[i].found) {
            ctsr_seterr(err, errlen, "missing tensor '%s'", l->e[i].name);
            return CTSR_E_FORMAT;
        }
    }
    return check_layout(l, data_size, err, errlen);
}

static const char *nonfinite_name(float v)
{
    return isnan(v) ? "NaN" : v > 0 ? "+inf" : "-inf";
}

static int copy_tensor(const ctsr_st_tensor *e, const uint8_t *data, char *err, size_t errlen)
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
            e->dst[i] = ctsr_half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
    }
    for (size_t i = 0; i < e->count; i++)
        if (!isfinite(e->dst[i])) {
            ctsr_seterr(err, errlen, "tensor '%s': element %zu is %s (weights must be finite)",
                        e->name, i, nonfinite_name(e->dst[i]));
            return CTSR_E_FORMAT;
        }
    return 0;
}

int ctsr_st_read_data(const ctsr_st_list *l, const uint8_t *data, char *err, size_t errlen)
{
    int rc;
    for (int i = 0; i < l->n; i++)
        if ((rc = copy_tensor(&l->e[i], data, err, errlen)))
            return rc;
    return 0;
}
