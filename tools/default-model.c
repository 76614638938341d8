/* The default model's location; see default-model.h. */
#include "default-model.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* from tools/meson.build */
#ifndef CTSR_INSTALLED_MODEL
#error "CTSR_INSTALLED_MODEL (the installed default model) must be defined"
#endif
#ifndef CTSR_BUILD_ROOT
#error "CTSR_BUILD_ROOT (the build directory) must be defined"
#endif
#ifndef CTSR_UNINSTALLED_MODEL
#error "CTSR_UNINSTALLED_MODEL (the source tree's default model) must be defined"
#endif

const char *ctsr_installed_model_path(void)
{
    return CTSR_INSTALLED_MODEL;
}

const char *ctsr_uninstalled_model_path(void)
{
    return CTSR_UNINSTALLED_MODEL;
}

/* Whether the file `module` lies inside the build directory (symbolic links resolved). */
static int in_build_tree(const char *module)
{
    char *file, *root;
    int inside = 0;

    if (!module || !*module)
        return 0;
    file = realpath(module, NULL);
    root = realpath(CTSR_BUILD_ROOT, NULL);
    if (file && root) {
        const size_t n = strlen(root);
        inside = !strncmp(file, root, n) && file[n] == '/';
    }
    free(file);
    free(root);
    return inside;
}

static const char *put(const char *path, char *buf, size_t n)
{
    if (!n)
        return NULL;
    if (strlen(path) >= n) {
        buf[0] = '\0';
        return NULL;
    }
    memcpy(buf, path, strlen(path) + 1);
    return buf;
}

const char *ctsr_default_model_path(const char *module, char *buf, size_t n)
{
    const char *env = getenv("CTSR_MODEL_PATH");

    if (env && *env)
        return put(env, buf, n);
    /* an uninstalled build takes its own source tree's model before an installed one,
     * which may be an older release's */
    if (in_build_tree(module) && access(CTSR_UNINSTALLED_MODEL, F_OK) == 0)
        return put(CTSR_UNINSTALLED_MODEL, buf, n);
    return put(CTSR_INSTALLED_MODEL, buf, n);
}
