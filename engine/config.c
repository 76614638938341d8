/* libctsr: the config JSON of a model file (config.h). */
#include "config.h"

#include <math.h>
#include <string.h>

#include "ctsr.h"
#include "error.h"
#include "json-strict.h"

static int cfg_int(JsonObject *o, const char *key, int lo, int hi, int *val, char *err,
                   size_t errlen)
{
    JsonNode *n = json_object_get_member(o, key);
    if (!n) {
        ctsr_seterr(err, errlen, "config lacks '%s'", key);
        return CTSR_E_FORMAT;
    }
    if (!ctsr_json_is_int(n)) {
        ctsr_seterr(err, errlen, "config '%s' must be an integer", key);
        return CTSR_E_FORMAT;
    }
    gint64 v = json_node_get_int(n);
    if (v < lo || v > hi) {
        ctsr_seterr(err, errlen, "config '%s' = %lld out of range %d..%d", key, (long long)v,
                    lo, hi);
        return CTSR_E_FORMAT;
    }
    *val = (int)v;
    return 0;
}

/* Every member present (named in the order of student.py's StudentConfig). */
static int cfg_complete(JsonObject *o, char *err, size_t errlen)
{
    static const char *const need[] = {"scale",    "channels",  "blocks",      "attn_blocks",
                                       "window",   "heads",     "mlp_ratio",   "act",
                                       "temb_dim", "temb_hidden", "temb_scale"};
    for (size_t i = 0; i < sizeof need / sizeof need[0]; i++) {
        if (!json_object_has_member(o, need[i])) {
            ctsr_seterr(err, errlen, "config lacks '%s'", need[i]);
            return CTSR_E_FORMAT;
        }
    }
    return 0;
}

/* The integer members, each in its range, and the rules that tie them together. */
static int cfg_sizes(JsonObject *o, ctsr_config *c, char *err, size_t errlen)
{
    int rc;
    if ((rc = cfg_int(o, "scale", 2, 4, &c->scale, err, errlen)) ||
        (rc = cfg_int(o, "channels", 4, CTSR_MAX_CHANNELS, &c->channels, err, errlen)) ||
        (rc = cfg_int(o, "blocks", 1, CTSR_MAX_BLOCKS, &c->blocks, err, errlen)) ||
        (rc = cfg_int(o, "window", 1, 16, &c->window, err, errlen)) ||
        (rc = cfg_int(o, "heads", 1, CTSR_MAX_HEADS, &c->heads, err, errlen)) ||
        (rc = cfg_int(o, "mlp_ratio", 1, CTSR_MAX_MLP_RATIO, &c->mlp_ratio, err, errlen)) ||
        (rc = cfg_int(o, "temb_dim", 2, CTSR_MAX_TEMB_DIM, &c->temb_dim, err, errlen)) ||
        (rc = cfg_int(o, "temb_hidden", 1, CTSR_MAX_TEMB_HIDDEN, &c->temb_hidden, err, errlen)))
        return rc;
    if (c->channels % 4) {
        ctsr_seterr(err, errlen, "config 'channels' = %d: must be a positive multiple of 4",
                    c->channels);
        return CTSR_E_FORMAT;
    }
    if (c->channels % c->heads || (c->channels / c->heads) % 4) {
        ctsr_seterr(err, errlen, "config: channels/heads (%d/%d) must be a multiple of 4",
                    c->channels, c->heads);
        return CTSR_E_FORMAT;
    }
    if (c->temb_dim % 2) {
        ctsr_seterr(err, errlen, "config 'temb_dim' = %d must be even", c->temb_dim);
        return CTSR_E_FORMAT;
    }
    return 0;
}

static int cfg_act(JsonObject *o, ctsr_config *c, char *err, size_t errlen)
{
    JsonNode *n = json_object_get_member(o, "act");
    if (!ctsr_json_is_string(n)) {
        ctsr_seterr(err, errlen, "config 'act' must be a string");
        return CTSR_E_FORMAT;
    }
    const char *act = json_node_get_string(n);
    if (!strcmp(act, "relu"))
        c->act = CTSR_ACT_RELU;
    else if (!strcmp(act, "lrelu"))
        c->act = CTSR_ACT_LRELU;
    else if (!strcmp(act, "silu"))
        c->act = CTSR_ACT_SILU;
    else {
        ctsr_seterr(err, errlen,
                    "config 'act' = \"%.32s\": act must be one of relu, lrelu, silu", act);
        return CTSR_E_FORMAT;
    }
    return 0;
}

static int cfg_temb_scale(JsonObject *o, ctsr_config *c, char *err, size_t errlen)
{
    JsonNode *n = json_object_get_member(o, "temb_scale");
    if (!ctsr_json_is_number(n)) {
        ctsr_seterr(err, errlen, "config 'temb_scale' must be a number");
        return CTSR_E_FORMAT;
    }
    double ts = json_node_get_value_type(n) == G_TYPE_INT64 ? (double)json_node_get_int(n)
                                                             : json_node_get_double(n);
    if (!isfinite(ts) || ts <= 0.0 || ts > CTSR_MAX_TEMB_SCALE) {
        ctsr_seterr(err, errlen, "config 'temb_scale' = %g out of range (0, %g]", ts,
                    CTSR_MAX_TEMB_SCALE);
        return CTSR_E_FORMAT;
    }
    c->temb_scale = (float)ts;
    return 0;
}

/* attn_blocks: distinct block indices (c->blocks already known) -> c->attn_mask */
static int cfg_attn_blocks(JsonObject *o, ctsr_config *c, char *err, size_t errlen)
{
    JsonNode *n = json_object_get_member(o, "attn_blocks");
    if (!n || !JSON_NODE_HOLDS_ARRAY(n)) {
        ctsr_seterr(err, errlen, "config 'attn_blocks' must be an array of integers");
        return CTSR_E_FORMAT;
    }
    JsonArray *a = json_node_get_array(n);
    guint na = json_array_get_length(a);
    for (guint i = 0; i < na; i++) {
        JsonNode *e = json_array_get_element(a, i);
        if (!ctsr_json_is_int(e)) {
            ctsr_seterr(err, errlen, "config 'attn_blocks' must be an array of integers");
            return CTSR_E_FORMAT;
        }
        gint64 b = json_node_get_int(e);
        if (b < 0 || b >= c->blocks) {
            ctsr_seterr(err, errlen,
                        "config: attn_blocks out of range (block %lld, blocks = %d)",
                        (long long)b, c->blocks);
            return CTSR_E_FORMAT;
        }
        if (c->attn_mask & (1u << b)) {
            ctsr_seterr(err, errlen, "config: attn_blocks lists block %lld twice",
                        (long long)b);
            return CTSR_E_FORMAT;
        }
        c->attn_mask |= 1u << b;
    }
    return 0;
}

int ctsr_config_parse(const char *json, ctsr_config *cfg, char *err, size_t errlen)
{
    if (!json || !cfg) {
        ctsr_seterr(err, errlen, "config: NULL argument");
        return CTSR_E_INVALID;
    }
    JsonParser *p;
    JsonObject *o;
    int rc = ctsr_json_parse_object(json, strlen(json), "config", &p, &o, err, errlen);
    if (rc)
        return rc;
    ctsr_config c;
    memset(&c, 0, sizeof c);
    if (!(rc = cfg_complete(o, err, errlen)) && !(rc = cfg_sizes(o, &c, err, errlen)) &&
        !(rc = cfg_act(o, &c, err, errlen)) && !(rc = cfg_temb_scale(o, &c, err, errlen)) &&
        !(rc = cfg_attn_blocks(o, &c, err, errlen)))
        *cfg = c;
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
