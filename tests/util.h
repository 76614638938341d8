/* Shared helpers of the C tests. */
#ifndef CTSR_TEST_UTIL_H
#define CTSR_TEST_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int tu_failures;
extern int tu_passed;

#define TU_CHECK(cond, ...)                                                                    \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            tu_failures++;                                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                  \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fprintf(stderr, "\n");                                                             \
        }                                                                                      \
    } while (0)

/* TU_CHECK that also counts the passes (reported by tu_finish_counted). */
#define TU_EXPECT(cond, ...)                                                                   \
    do {                                                                                       \
        int ok_ = !!(cond);                                                                    \
        TU_CHECK(ok_, __VA_ARGS__);                                                            \
        tu_passed += ok_;                                                                      \
    } while (0)

/* Deterministic uniform floats in [lo, hi). */
void tu_rand_fill(float *x, size_t n, float lo, float hi, uint32_t *state);
/* Largest absolute difference. */
float tu_max_abs_diff(const float *a, const float *b, size_t n);
/* Path of a file in tests/data (CTSR_TEST_DATA); static buffer. */
const char *tu_data_path(const char *name);
/* Whole file into memory (malloc); NULL on failure. */
void *tu_read_file(const char *path, size_t *size);

/* Golden vectors written by training/ctsr/golden.py:
 *   char magic[8] = "CTSRGLD1"; u32 h, w, scale, n_t; f32 t[n_t];
 *   f32 input[h][w][3]; f32 output[n_t][scale*h][scale*w][3]   (little-endian) */
typedef struct tu_golden {
    int h, w, scale, n_t;
    float *t;
    float *input;
    float *output; /* n_t images */
} tu_golden;
int tu_golden_load(const char *path, tu_golden *g);
void tu_golden_free(tu_golden *g);

/* Prints "N passed, N failed" and returns the exit status. */
int tu_finish(const char *name, int passed);
#endif
