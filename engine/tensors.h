/* libctsr internal: the tensors of a student network. From a config: their names and shapes
 * (those of the PyTorch state_dict of training/ctsr/student.py) and the ctsr_model field
 * each fills. */
#ifndef CTSR_TENSORS_H
#define CTSR_TENSORS_H

#include "model.h"
#include "safetensors.h"

/* Appends every tensor of m->cfg's network to l, each bound to its field of m (weights and
 * biases of the layers, LayerNorm vectors), and sets the layers' sizes. 0, or CTSR_E_NOMEM
 * with a message. */
int ctsr_model_list_tensors(ctsr_model *m, ctsr_st_list *l, char *err, size_t errlen);

#endif
