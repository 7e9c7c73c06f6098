/* fuzz_model.h: the small model the checkpoint seeds are saved from and the checkpoint
 * fuzz target loads into: three tensors of 1, 2 and 4 dimensions (40 numbers). */
#ifndef FUZZ_MODEL_H
#define FUZZ_MODEL_H

#include "../../tensor.h"

static inline void fuzz_model(ParamSet *ps) {
    params_init(ps);
    params_add(ps, NULL, NULL, "a.w", 2, 3, 4, 0, 0);
    params_add(ps, NULL, NULL, "a.b", 1, 4, 0, 0, 0);
    params_add(ps, NULL, NULL, "conv", 4, 2, 3, 2, 2);
    params_alloc(ps);
}

#endif
