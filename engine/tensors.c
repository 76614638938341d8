/* libctsr: the tensors of a student network (tensors.h). */
#include "tensors.h"

#include <stdio.h>

#include "ctsr.h"
#include "error.h"

typedef struct lister {
    ctsr_st_list *l;
    int oom;
} lister;

static void want(lister *b, float **ptr, const char *name, int rank, int64_t d0, int64_t d1,
                 int64_t d2, int64_t d3)
{
    if (b->oom)
        return;
    const int64_t dims[4] = {d0, d1, d2, d3};
    ctsr_st_tensor *t = ctsr_st_add(b->l, name, rank, dims);
    if (!t) {
        b->oom = 1;
        return;
    }
    t->bind = ptr;
}

/* A conv (k x k, rank 4) or linear (rank 2) layer: "<prefix>.weight" and "<prefix>.bias". */
static void want_layer(lister *b, ctsr_layer *l, const char *prefix, int cout, int cin, int k,
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

/* blocks.<i>.attn: LayerNorm, qkv, proj, LayerNorm, MLP */
static void want_attention(lister *b, ctsr_block *blk, int i, int C, int hC)
{
    char p[64], name[64];
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

int ctsr_model_list_tensors(ctsr_model *m, ctsr_st_list *l, char *err, size_t errlen)
{
    const ctsr_config *c = &m->cfg;
    int C = c->channels, M = c->temb_hidden, E = c->temb_dim, s = c->scale;
    char p[64];
    lister b = {l, 0};
    want_layer(&b, &m->fc1, "temb.fc1", M, E, 1, 1);
    want_layer(&b, &m->fc2, "temb.fc2", M, M, 1, 1);
    want_layer(&b, &m->head, "head", C, 3, 3, 0);
    want_layer(&b, &m->tail, "tail", 3 * s * s, C, 3, 0);
    for (int i = 0; i < c->blocks; i++) {
        ctsr_block *blk = &m->blocks[i];
        snprintf(p, sizeof p, "blocks.%d.conv1", i);
        want_layer(&b, &blk->conv1, p, C, C, 3, 0);
        snprintf(p, sizeof p, "blocks.%d.conv2", i);
        want_layer(&b, &blk->conv2, p, C, C, 3, 0);
        snprintf(p, sizeof p, "blocks.%d.film", i);
        want_layer(&b, &blk->film, p, 2 * C, M, 1, 1);
        blk->has_attn = (c->attn_mask >> i) & 1;
        if (blk->has_attn)
            want_attention(&b, blk, i, C, c->mlp_ratio * C);
    }
    if (b.oom) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    return 0;
}
