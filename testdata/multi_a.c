/* multi_a.c — calls into multi_b.c, which is loaded as a separate object. */
#include "bcship.h"

extern int64_t b_scale(int64_t v);
extern int64_t b_state;

BC_ENTRY int64_t t_multi(bc_ctx *ctx, const void *arg, uint64_t n) {
  int64_t v = *(const int64_t *)arg;
  b_state += 1;
  return b_scale(v) + b_state;
}
