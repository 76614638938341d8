/* libctsr: strict JSON parsing of untrusted text (json-strict.h). */
#include "json-strict.h"

#include <stdint.h>
#include <string.h>

#include "ctsr.h"
#include "error.h"

/* The integer literal s[j..k) (digits only, sign already skipped) fits in 64 bits:
 * |value| <= 2^63 - 1, or 2^63 when negative. */
static int integer_fits(const char *s, size_t j, size_t k, int negative)
{
    uint64_t v = 0, lim = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (size_t d = j; d < k; d++) {
        if (s[d] < '0' || s[d] > '9')
            break;
        uint64_t digit = (uint64_t)(s[d] - '0');
        if (v > (lim - digit) / 10)
            return 0;
        v = v * 10 + digit;
    }
    return 1;
}

/* Checks on the raw JSON text before json-glib sees it: the nesting depth of [ / { outside
 * strings, and integer literals that do not fit in 64 bits (json-glib turns
 * 99999999999999999999 into -1 and -99999999999999999999 into 1). */
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
            if (++depth > CTSR_MAX_JSON_DEPTH) {
                ctsr_seterr(err, errlen, "%s: JSON nested deeper than %d levels", what,
                            CTSR_MAX_JSON_DEPTH);
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
            if (integer && !integer_fits(s, j, k, c == '-')) {
                int len = k - i > 48 ? 48 : (int)(k - i);
                ctsr_seterr(err, errlen, "%s: integer %.*s%s does not fit in 64 bits", what,
                            len, s + i, k - i > 48 ? "..." : "");
                return 0;
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

/* json-glib's parse with the duplicate-name check; 0 or CTSR_E_FORMAT with a message. */
static int parse_checked(JsonParser *p, const char *text, size_t len, const char *what,
                         char *err, size_t errlen)
{
    dup_check dup = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL), NULL};
    gulong handler = g_signal_connect(p, "object-member", G_CALLBACK(on_object_member), &dup);
    GError *gerr = NULL;
    gboolean parsed = json_parser_load_from_data(p, text, (gssize)len, &gerr);
    g_signal_handler_disconnect(p, handler);
    g_hash_table_destroy(dup.seen);
    int rc = 0;
    if (!parsed) {
        ctsr_seterr(err, errlen, "%s is not valid JSON: %s", what,
                    gerr && gerr->message ? gerr->message : "parse error");
        rc = CTSR_E_FORMAT;
    } else if (dup.dup) {
        ctsr_seterr(err, errlen, "%s: \"%.80s\" appears twice in one JSON object", what,
                    dup.dup);
        rc = CTSR_E_FORMAT;
    }
    if (gerr)
        g_error_free(gerr);
    g_free(dup.dup);
    return rc;
}

int ctsr_json_parse_object(const char *text, size_t len, const char *what, JsonParser **out,
                           JsonObject **obj, char *err, size_t errlen)
{
    *out = NULL;
    *obj = NULL;
    if (len > (size_t)G_MAXSSIZE) {
        ctsr_seterr(err, errlen, "%s: too large", what);
        return CTSR_E_FORMAT;
    }
    if (!json_prescan(text, len, what, err, errlen))
        return CTSR_E_FORMAT;
    JsonParser *p = json_parser_new();
    if (!p) {
        ctsr_seterr(err, errlen, "%s: out of memory", what);
        return CTSR_E_NOMEM;
    }
    int rc = parse_checked(p, text, len, what, err, errlen);
    if (rc) {
        g_object_unref(p);
        return rc;
    }
    JsonNode *root = json_parser_get_root(p);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        ctsr_seterr(err, errlen, "%s is not a JSON object", what);
        g_object_unref(p);
        return CTSR_E_FORMAT;
    }
    *out = p;
    *obj = json_node_get_object(root);
    return 0;
}
