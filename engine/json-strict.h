/* libctsr internal: JSON parsing for untrusted model files (json-glib, with the checks it
 * does not make). Used for the safetensors header and the config string inside it. */
#ifndef CTSR_JSON_STRICT_H
#define CTSR_JSON_STRICT_H

#include <json-glib/json-glib.h>
#include <stddef.h>

#define CTSR_MAX_JSON_DEPTH 64

/* Parses len bytes of JSON text whose root must be an object. Before json-glib sees it the
 * text is scanned for nesting deeper than CTSR_MAX_JSON_DEPTH (json-glib's parser is
 * recursive) and for integer literals that do not fit in 64 bits (json-glib would report a
 * wrong value); a name that appears twice in one object is refused (json-glib keeps the
 * last). `what` names the text in messages ("model header", "config"). On success *parser
 * (the caller unrefs it) owns *obj; else a CTSR_E_* code and a message. */
int ctsr_json_parse_object(const char *text, size_t len, const char *what, JsonParser **parser,
                           JsonObject **obj, char *err, size_t errlen);

static inline int ctsr_json_is_int(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_INT64;
}

static inline int ctsr_json_is_number(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) &&
           (json_node_get_value_type(n) == G_TYPE_INT64 ||
            json_node_get_value_type(n) == G_TYPE_DOUBLE);
}

static inline int ctsr_json_is_string(JsonNode *n)
{
    return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING;
}

#endif
