/* libctsr internal: the safetensors container (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian header length N, N bytes of JSON header (dtype, shape and
 * data_offsets of every tensor, and __metadata__), then the data section. Every offset and
 * size read from a file is checked before use; a malformed file gives CTSR_E_FORMAT and a
 * message, never a crash.
 *
 * The reader is driven by the list of tensors the caller expects (names and shapes, from
 * the model's config): anything else in the file is an error. */
#ifndef CTSR_SAFETENSORS_H
#define CTSR_SAFETENSORS_H

#include <json-glib/json-glib.h>
#include <stddef.h>
#include <stdint.h>

#define CTSR_ST_MAX_HEADER_BYTES ((uint64_t)100 * 1000 * 1000)

/* One expected tensor: what the caller asks for, then what the header says about it. */
typedef struct ctsr_st_tensor {
    char name[64];
    int rank;
    int64_t shape[4];
    size_t count;  /* elements */
    size_t offset; /* in floats, inside the caller's storage */
    float *dst;    /* where its float32 values go (ctsr_st_bind) */
    float **bind;  /* the caller's pointer that gets dst as well (may be NULL) */
    int found;
    uint64_t begin, end; /* data_offsets: bytes of the data section */
    int dsize;           /* bytes per element: 4 (F32) or 2 (F16) */
} ctsr_st_tensor;

typedef struct ctsr_st_list {
    ctsr_st_tensor *e;
    int n, cap;
    size_t total; /* floats of all tensors */
} ctsr_st_list;

/* Appends a tensor of the given rank (<= 4) and dimensions (small: bounded by the config
 * limits); its offset is the list's total so far. NULL when out of memory. */
ctsr_st_tensor *ctsr_st_add(ctsr_st_list *l, const char *name, int rank, const int64_t *dims);
void ctsr_st_list_free(ctsr_st_list *l);
/* Places every tensor at storage + its offset (storage holds l->total floats) and sets
 * each one's bind pointer. */
void ctsr_st_bind(ctsr_st_list *l, float *storage);

uint64_t ctsr_st_read_u64le(const uint8_t *p);

/* The 8-byte header length against the limit and the size of the whole file. */
int ctsr_st_check_header_length(uint64_t hlen, uint64_t size, char *err, size_t errlen);

/* Matches every member of the header object but __metadata__ against the list: each must be
 * an expected tensor with its exact shape, an F32 or F16 dtype and data_offsets spanning its
 * bytes inside the data_size bytes of the data section; none may be missing, and together
 * they must cover the data section exactly (no overlap, no gap, nothing after them). */
int ctsr_st_match(JsonObject *header, ctsr_st_list *l, uint64_t data_size, char *err,
                  size_t errlen);

/* Converts every matched tensor's data (little-endian F32 or F16) into its dst; non-finite
 * values are refused (the network would turn them into NaN, a black frame). */
int ctsr_st_read_data(const ctsr_st_list *l, const uint8_t *data, char *err, size_t errlen);

#endif
