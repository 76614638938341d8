/* libctsr: error messages (error.h) and the error codes' names (ctsr_strerror). */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

#include "ctsr.h"

void ctsr_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *ctsr_strerror(int code)
{
    switch (code) {
    case CTSR_OK: return "success";
    case CTSR_E_INVALID: return "invalid argument";
    case CTSR_E_NOMEM: return "out of memory";
    case CTSR_E_IO: return "I/O error";
    case CTSR_E_FORMAT: return "malformed model";
    case CTSR_E_NO_DEVICE: return "no Vulkan device";
    case CTSR_E_VULKAN: return "Vulkan error";
    case CTSR_E_NO_MODEL: return "no model loaded";
    default: return "unknown error";
    }
}
