/* Fuzz target of libctsr's model loader (ctsr_model_load_memory: header length, JSON header,
 * metadata, config, tensor entries, data, the finite-output probe).
 *
 * Built two ways:
 *  - with clang and -fsanitize=fuzzer,address,undefined (scripts/fuzz.sh): a libFuzzer binary;
 *  - without CTSR_LIBFUZZER (the meson test fuzz-corpus): a replay program that runs every file
 *    given on the command line (or every file of the directories given) through the same
 *    function, so the seed corpus and every crash ever found stay regression tests.
 *
 * Properties checked beyond "no crash, no sanitizer report": a failure returns a CTSR_E_*
 * code with a non-empty NUL-terminated message and no model; a success returns a model whose
 * scale is 2..4 and whose FiLM vectors are finite at t = 0 and 1. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctsr.h"
#include "model.h"

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_model: property violated: %s\n", #cond);                  \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    memset(err, 'x', sizeof err);
    ctsr_model *m = (ctsr_model *)&err; /* must be overwritten */
    int rc = ctsr_model_load_memory(data, size, &m, err, sizeof err);
    if (rc) {
        CHECK(rc == CTSR_E_FORMAT || rc == CTSR_E_NOMEM);
        CHECK(m == NULL);
        CHECK(memchr(err, 0, sizeof err) != NULL && err[0] != 0);
        return 0;
    }
    CHECK(m != NULL);
    CHECK(m->cfg.scale >= 2 && m->cfg.scale <= 4);
    float *film = malloc((size_t)2 * m->cfg.channels * m->cfg.blocks * sizeof *film);
    CHECK(film != NULL);
    for (int t = 0; t <= 1; t++) {
        ctsr_model_film(m, (float)t, film);
        for (int i = 0; i < 2 * m->cfg.channels * m->cfg.blocks; i++)
            CHECK(isfinite(film[i]));
    }
    free(film);
    ctsr_model_free(m);
    return 0;
}

#ifndef CTSR_LIBFUZZER
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *b = realloc(buf, cap);
            if (!b) {
                fclose(f);
                free(buf);
                return 1;
            }
            buf = b;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    fclose(f);
    /* an exact-size copy, so that reads past the end are caught (valgrind, ASan) */
    uint8_t *exact = malloc(n ? n : 1);
    if (n)
        memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st)) {
            perror(argv[i]);
            bad++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad += run_file(argv[i]);
            files++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            size_t len = strlen(e->d_name);
            if (e->d_name[0] == '.' || (len > 3 && !strcmp(e->d_name + len - 3, ".md")))
                continue;
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], e->d_name);
            bad += run_file(p);
            files++;
        }
        if (d)
            closedir(d);
    }
    printf("fuzz-corpus: %d files replayed, %d unreadable\n", files, bad);
    return bad || files == 0;
}
#endif
