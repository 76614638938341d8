/* libctsr: loading a ctsr-student model file: the safetensors container (safetensors.c), its
 * metadata and config (config.c), the tensors the config needs (tensors.c), then a check
 * that the network computes finite values with the weights (the C reference, ref.c). */
#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctsr.h"
#include "json-strict.h"
#include "safetensors.h"
#include "tensors.h"

void ctsr_model_free(ctsr_model *m)
{
    if (!m)
        return;
    free(m->storage);
    free(m->config_json);
    free(m->provenance);
    free(m);
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ---- the header ---- */

/* A parsed and checked header: the model with its storage allocated, every tensor's place in
 * the data section known, no data read yet. */
typedef struct header {
    JsonParser *parser;
    ctsr_model *m;
    ctsr_st_list tensors;
} header;

static void header_clear(header *h)
{
    ctsr_st_list_free(&h->tensors);
    ctsr_model_free(h->m);
    if (h->parser)
        g_object_unref(h->parser);
    memset(h, 0, sizeof *h);
}

/* The metadata strings: format, format_version, config, provenance (NULL when absent; only
 * provenance may be). */
static int parse_metadata(JsonObject *root, const char *vals[4], char *err, size_t errlen)
{
    JsonNode *mn = json_object_get_member(root, "__metadata__");
    if (!mn) {
        ctsr_seterr(err, errlen, "model header lacks __metadata__ (not a ctsr-student file)");
        return CTSR_E_FORMAT;
    }
    if (!JSON_NODE_HOLDS_OBJECT(mn)) {
        ctsr_seterr(err, errlen, "model __metadata__ is not an object");
        return CTSR_E_FORMAT;
    }
    JsonObject *meta = json_node_get_object(mn);
    static const char *const keys[] = {"format", "format_version", "config", "provenance"};
    for (int i = 0; i < 4; i++) {
        JsonNode *n = json_object_get_member(meta, keys[i]);
        vals[i] = NULL;
        if (!n)
            continue;
        if (!ctsr_json_is_string(n)) {
            ctsr_seterr(err, errlen, "model __metadata__ '%s' is not a string", keys[i]);
            return CTSR_E_FORMAT;
        }
        vals[i] = json_node_get_string(n);
    }
    return 0;
}

/* format = ctsr-student, format_version = the one this library reads, a config present */
static int check_metadata(const char *const vals[4], char *err, size_t errlen)
{
    if (!vals[0]) {
        ctsr_seterr(err, errlen, "model __metadata__ lacks 'format' (not a %s file)",
                    CTSR_FORMAT_NAME);
        return CTSR_E_FORMAT;
    }
    if (strcmp(vals[0], CTSR_FORMAT_NAME)) {
        ctsr_seterr(err, errlen, "model format is \"%.64s\", expected \"%s\"", vals[0],
                    CTSR_FORMAT_NAME);
        return CTSR_E_FORMAT;
    }
    if (!vals[1]) {
        ctsr_seterr(err, errlen, "model __metadata__ lacks 'format_version'");
        return CTSR_E_FORMAT;
    }
    char want_version[16];
    snprintf(want_version, sizeof want_version, "%d", CTSR_FORMAT_VERSION);
    if (strcmp(vals[1], want_version)) {
        ctsr_seterr(err, errlen,
                    "unsupported model format_version \"%.32s\" (this library supports "
                    "version %d)", vals[1], CTSR_FORMAT_VERSION);
        return CTSR_E_FORMAT;
    }
    if (!vals[2]) {
        ctsr_seterr(err, errlen, "model __metadata__ lacks 'config'");
        return CTSR_E_FORMAT;
    }
    return 0;
}

/* A model of the config vals[2] with the stored strings, its tensors listed in h->tensors and
 * its storage allocated and bound (no data yet). */
static int model_new(const char *const vals[4], header *h, char *err, size_t errlen)
{
    ctsr_model *m = h->m = calloc(1, sizeof *m);
    if (!m) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    char cerr[256] = "";
    int rc = ctsr_config_parse(vals[2], &m->cfg, cerr, sizeof cerr);
    if (rc) {
        ctsr_seterr(err, errlen, "model %s", cerr);
        return rc == CTSR_E_INVALID ? CTSR_E_FORMAT : rc;
    }
    m->format_version = CTSR_FORMAT_VERSION;
    m->config_json = xstrdup(vals[2]);
    m->provenance = xstrdup(vals[3] ? vals[3] : "");
    if ((rc = ctsr_model_list_tensors(m, &h->tensors, err, errlen)))
        return rc;
    if (!m->config_json || !m->provenance) {
        ctsr_seterr(err, errlen, "out of memory");
        return CTSR_E_NOMEM;
    }
    size_t total = h->tensors.total;
    m->n_params = total;
    m->storage = malloc((total ? total : 1) * sizeof(float));
    if (!m->storage) {
        ctsr_seterr(err, errlen, "out of memory (%zu weights)", total);
        return CTSR_E_NOMEM;
    }
    ctsr_st_bind(&h->tensors, m->storage);
    return 0;
}

/* Parses the JSON header (hlen bytes) of a file whose data section holds data_size bytes and
 * checks everything it says: metadata, config, and every tensor entry against the config and
 * the data section. On failure h is cleared. */
static int header_parse(const uint8_t *text, uint64_t hlen, uint64_t data_size, header *h,
                        char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    JsonObject *root = NULL;
    const char *vals[4];
    int rc = ctsr_json_parse_object((const char *)text, (size_t)hlen, "model header",
                                    &h->parser, &root, err, errlen);
    if (!rc && !(rc = parse_metadata(root, vals, err, errlen)) &&
        !(rc = check_metadata(vals, err, errlen)) && !(rc = model_new(vals, h, err, errlen)))
        rc = ctsr_st_match(root, &h->tensors, data_size, err, errlen);
    if (rc)
        header_clear(h);
    return rc;
}

/* Copies the data section (the size header_parse was given) into the model and checks that
 * the network computes finite values with it; on success the caller owns h->m. */
static int header_load_data(header *h, const uint8_t *data, char *err, size_t errlen)
{
    int rc = ctsr_st_read_data(&h->tensors, data, err, errlen);
    return rc ? rc : ctsr_model_probe(h->m, err, errlen);
}

/* ---- from memory ---- */

int ctsr_model_load_memory(const void *data_, size_t size, ctsr_model **out, char *err,
                           size_t errlen)
{
    const uint8_t *data = data_;
    header h;
    int rc;
    if (err && errlen)
        err[0] = 0;
    if (!out) {
        ctsr_seterr(err, errlen, "model: NULL output argument");
        return CTSR_E_INVALID;
    }
    *out = NULL;
    if (!data && size) {
        ctsr_seterr(err, errlen, "model: NULL data");
        return CTSR_E_INVALID;
    }
    if (size < 8) {
        ctsr_seterr(err, errlen, "model file truncated: %zu bytes, the 8-byte header length "
                                 "is missing", size);
        return CTSR_E_FORMAT;
    }
    uint64_t hlen = ctsr_st_read_u64le(data);
    if ((rc = ctsr_st_check_header_length(hlen, size, err, errlen)))
        return rc;
    if ((rc = header_parse(data + 8, hlen, (uint64_t)(size - 8 - hlen), &h, err, errlen)))
        return rc;
    if ((rc = header_load_data(&h, data + 8 + hlen, err, errlen))) {
        header_clear(&h);
        return rc;
    }
    *out = h.m;
    h.m = NULL;
    header_clear(&h);
    return 0;
}

/* ---- from a file ---- */

/* Reads exactly n bytes at the current position: 0, CTSR_E_IO for a read error, or
 * CTSR_E_FORMAT when the file ends first (it shrank after the open, whose size was
 * size_at_open); a message naming path either way. */
static int read_exact(int fd, void *buf, size_t n, const char *path, long long size_at_open,
                      char *err, size_t errlen)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            ctsr_seterr(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
            return CTSR_E_IO;
        }
        if (r == 0) {
            ctsr_seterr(err, errlen,
                        "%s: model file truncated while being read (%lld bytes at open)", path,
                        size_at_open);
            return CTSR_E_FORMAT;
        }
        got += (size_t)r;
    }
    return 0;
}

static const char *not_regular_reason(mode_t mode)
{
    return S_ISDIR(mode) ? strerror(EISDIR)
           : S_ISFIFO(mode) ? "not a regular file (a FIFO)"
           : S_ISCHR(mode) || S_ISBLK(mode) ? "not a regular file (a device)"
           : S_ISSOCK(mode) ? "not a regular file (a socket)"
                            : "not a regular file";
}

/* Opens path for reading: a regular file of at least 8 bytes (its size in *size). */
static int open_model_file(const char *path, int *fd_out, uint64_t *size, char *err,
                           size_t errlen)
{
    struct stat st;
    /* O_NONBLOCK: opening a FIFO without a writer must not wait; nothing but a regular
     * file is read */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY), rc = 0;
    if (fd < 0 || fstat(fd, &st)) {
        ctsr_seterr(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
        rc = CTSR_E_IO;
    } else if (!S_ISREG(st.st_mode)) {
        ctsr_seterr(err, errlen, "%s: %s", path, not_regular_reason(st.st_mode));
        rc = CTSR_E_IO;
    } else if (st.st_size < 8) {
        ctsr_seterr(err, errlen, "%s: model file truncated: %lld bytes, the 8-byte header "
                    "length is missing", path, (long long)st.st_size);
        rc = CTSR_E_FORMAT;
    }
    if (rc) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    *fd_out = fd;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* The header first (the file may hold only what the header declares), then the data. */
static int load_fd(int fd, const char *path, uint64_t size, ctsr_model **out, char *err,
                   size_t errlen)
{
    header h;
    memset(&h, 0, sizeof h);
    uint8_t len8[8], *text = NULL, *data = NULL;
    char lerr[512] = "";
    uint64_t hlen, data_size;
    int rc;
    if ((rc = read_exact(fd, len8, 8, path, (long long)size, err, errlen)))
        goto done;
    hlen = ctsr_st_read_u64le(len8);
    if ((rc = ctsr_st_check_header_length(hlen, size, lerr, sizeof lerr)))
        goto format_error;
    if (!(text = malloc(hlen ? (size_t)hlen : 1)))
        goto nomem;
    if ((rc = read_exact(fd, text, (size_t)hlen, path, (long long)size, err, errlen)))
        goto done;
    data_size = size - 8 - hlen;
    if ((rc = header_parse(text, hlen, data_size, &h, lerr, sizeof lerr)))
        goto format_error;
    free(text);
    text = NULL;
    /* data_size now equals what the tensors of the config need */
    if (data_size > SIZE_MAX || !(data = malloc(data_size ? (size_t)data_size : 1)))
        goto nomem;
    if ((rc = read_exact(fd, data, (size_t)data_size, path, (long long)size, err, errlen)))
        goto done;
    if ((rc = header_load_data(&h, data, lerr, sizeof lerr)))
        goto format_error;
    *out = h.m;
    h.m = NULL;
    goto done;
nomem:
    ctsr_seterr(err, errlen, "%s: out of memory", path);
    rc = CTSR_E_NOMEM;
    goto done;
format_error: /* a message of the checks, prefixed with the path */
    ctsr_seterr(err, errlen, "%s: %s", path, lerr);
done:
    header_clear(&h);
    free(text);
    free(data);
    return rc;
}

int ctsr_model_load_file(const char *path, ctsr_model **out, char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!path || !out) {
        ctsr_seterr(err, errlen, "model: NULL argument");
        return CTSR_E_INVALID;
    }
    int fd;
    uint64_t size;
    int rc = open_model_file(path, &fd, &size, err, errlen);
    if (rc)
        return rc;
    rc = load_fd(fd, path, size, out, err, errlen);
    close(fd);
    return rc;
}

/* ---- the finite-output probe ---- */

/* n x n pixels of every kind a frame has: black, white, saturated colours, edges, a
 * gradient */
static void probe_image(float *img, int n)
{
    for (int y = 0; y < n; y++)
        for (int x = 0; x < n; x++)
            for (int c = 0; c < 3; c++) {
                float v;
                switch ((x / 2 + y / 2 + c) % 4) {
                case 0: v = 0.0f; break;
                case 1: v = 1.0f; break;
                default: v = (float)(x * n + y) / (float)(n * n - 1); break;
                }
                img[((size_t)y * n + x) * 3 + c] = v;
            }
}

int ctsr_model_probe(const ctsr_model *m, char *err, size_t errlen)
{
    /* 8 x 8 (small: the default model takes about 20 MMAC for the three timesteps) */
    const int n = 8, s = m->cfg.scale;
    float *img = malloc((size_t)n * n * 3 * sizeof *img);
    float *out = malloc((size_t)n * n * s * s * 3 * sizeof *out);
    int rc = 0;
    if (!img || !out) {
        ctsr_seterr(err, errlen, "out of memory");
        rc = CTSR_E_NOMEM;
        goto done;
    }
    probe_image(img, n);
    static const float ts[] = {0.0f, 0.5f, 1.0f};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0] && !rc; i++) {
        rc = ctsr_ref_forward(m, ts[i], img, n, n, out);
        if (rc == CTSR_E_FORMAT)
            ctsr_seterr(err, errlen, "the network computes non-finite values at timestep %g "
                        "(weights too large: the activations overflow and every frame would "
                        "come out black)", (double)ts[i]);
        else if (rc)
            ctsr_seterr(err, errlen, "out of memory");
    }
done:
    free(img);
    free(out);
    return rc;
}
