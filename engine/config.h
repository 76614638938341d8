/* libctsr internal: the architecture of a student network, as the model file's
 * __metadata__ "config" JSON string describes it (training/ctsr/student.py's StudentConfig). */
#ifndef CTSR_CONFIG_H
#define CTSR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ctsr-abi.h"

#define CTSR_MAX_BLOCKS 32
/* limits of a config this library accepts (bounds on untrusted input) */
#define CTSR_MAX_CHANNELS 256
#define CTSR_MAX_MLP_RATIO 8
#define CTSR_MAX_TEMB_DIM 1024
#define CTSR_MAX_TEMB_HIDDEN 1024
#define CTSR_MAX_HEADS 64
#define CTSR_MAX_TEMB_SCALE 1e6

/* activations: CTSR_ACT_* (ctsr-abi.h, shared with the shaders) */

typedef struct ctsr_config {
    int scale;       /* 2, 3 or 4 */
    int channels;    /* C, multiple of 4 */
    int blocks;      /* B, 1..CTSR_MAX_BLOCKS */
    int window;      /* w, 1..16 */
    int heads;       /* C/heads multiple of 4 */
    int mlp_ratio;   /* hidden = mlp_ratio*C */
    int act;         /* CTSR_ACT_RELU/LRELU/SILU */
    int temb_dim;    /* E, even */
    int temb_hidden; /* M */
    float temb_scale;
    uint32_t attn_mask; /* bit b set: block b has an attention block */
} ctsr_config;

/* Parse and validate a config JSON object (the __metadata__ "config" string): every member
 * present and of its type, within the limits above. 0, or CTSR_E_FORMAT (CTSR_E_INVALID for
 * NULL arguments) and a message naming the member. */
int ctsr_config_parse(const char *json, ctsr_config *cfg, char *err, size_t errlen);

/* Multiply-accumulates per input pixel (matches student.macs_per_pixel). */
double ctsr_config_macs_per_pixel(const ctsr_config *cfg);

#endif
