#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int tu_failures;
int tu_passed;

void tu_rand_fill(float *x, size_t n, float lo, float hi, uint32_t *state)
{
    for (size_t i = 0; i < n; i++) {
        *state = *state * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * (float)(*state >> 8) / 16777216.0f;
    }
}

float tu_max_abs_diff(const float *a, const float *b, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m))
            m = d; /* NaN propagates as the maximum */
    }
    return m;
}

const char *tu_data_path(const char *name)
{
    static char buf[4096];
    const char *dir = getenv("CTSR_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "tests/data", name);
    return buf;
}

void *tu_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && size)
        *size = (size_t)n;
    return buf;
}

int tu_golden_load(const char *path, tu_golden *g)
{
    size_t size;
    memset(g, 0, sizeof *g);
    uint8_t *d = tu_read_file(path, &size);
    if (!d)
        return -1;
    uint32_t hdr[4];
    if (size < 24 || memcmp(d, "CTSRGLD1", 8)) {
        free(d);
        return -1;
    }
    memcpy(hdr, d + 8, sizeof hdr);
    g->h = (int)hdr[0], g->w = (int)hdr[1], g->scale = (int)hdr[2], g->n_t = (int)hdr[3];
    size_t nin = (size_t)g->h * g->w * 3, nout = nin * g->scale * g->scale;
    size_t need = 24 + 4 * ((size_t)g->n_t + nin + nout * g->n_t);
    if (size != need) {
        free(d);
        return -1;
    }
    g->t = malloc(4 * (size_t)g->n_t);
    g->input = malloc(4 * nin);
    g->output = malloc(4 * nout * g->n_t);
    memcpy(g->t, d + 24, 4 * (size_t)g->n_t);
    memcpy(g->input, d + 24 + 4 * (size_t)g->n_t, 4 * nin);
    memcpy(g->output, d + 24 + 4 * ((size_t)g->n_t + nin), 4 * nout * g->n_t);
    free(d);
    return 0;
}

void tu_golden_free(tu_golden *g)
{
    free(g->t);
    free(g->input);
    free(g->output);
    memset(g, 0, sizeof *g);
}

int tu_finish(const char *name, int passed)
{
    printf("%s: %d passed, %d failed\n", name, passed, tu_failures);
    return tu_failures ? 1 : 0;
}
