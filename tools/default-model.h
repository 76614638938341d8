/* Where the default model is, for the programs built on libctsr (ctsr-upscale, the GStreamer
 * element). Not part of libctsr: the paths are the build's (see tools/meson.build). */
#ifndef CTSR_DEFAULT_MODEL_H
#define CTSR_DEFAULT_MODEL_H

#include <stddef.h>

/* The default model file of the program or plugin whose file is `module` (the executable,
 * e.g. "/proc/self/exe", or the plugin's shared object; NULL if unknown), written to buf
 * (n bytes). In order:
 *   1. $CTSR_MODEL_PATH when it is set and not empty, as given;
 *   2. when `module` lies inside the build directory it was built in (an uninstalled build),
 *      the source tree's models/ctsr-x2.safetensors when it exists (before an installed
 *      model, which may be an older release's);
 *   3. else the installed model, <prefix>/<datadir>/ctsr/ctsr-x2.safetensors (when it does
 *      not exist, the load error names it).
 * Returns buf, or NULL when the path does not fit (buf then holds ""). */
const char *ctsr_default_model_path(const char *module, char *buf, size_t n);

/* The installed model's path (step 3), and the source tree's model (step 2). */
const char *ctsr_installed_model_path(void);
const char *ctsr_uninstalled_model_path(void);

#endif
