/* libctsr internal: error messages. Every function of the library that fails returns a
 * negative CTSR_E_* code (ctsr.h) and writes a message with ctsr_seterr. */
#ifndef CTSR_ERROR_H
#define CTSR_ERROR_H

#include <stddef.h>

/* Writes a formatted message into err (when err && errlen; always NUL-terminated then,
 * truncated to errlen - 1 bytes). */
void ctsr_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
