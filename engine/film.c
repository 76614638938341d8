/* libctsr: the timestep MLP on the host (model.h: ctsr_model_film). The FiLM vectors it
 * computes are what ctsr_set_timestep uploads; nothing on the device is rebuilt. */
#include <math.h>

#include "model.h"

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
    float emb[CTSR_MAX_TEMB_DIM], h1[CTSR_MAX_TEMB_HIDDEN], z[CTSR_MAX_TEMB_HIDDEN];
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
