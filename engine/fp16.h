/* libctsr internal: IEEE 754 half precision (binary16) to float, for F16 model files. */
#ifndef CTSR_FP16_H
#define CTSR_FP16_H

#include <stdint.h>

/* Exact: every half (subnormals, +-0, +-inf, NaN with its payload) has a float equal to it. */
float ctsr_half_to_float(uint16_t h);

#endif
