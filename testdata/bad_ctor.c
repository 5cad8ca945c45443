/* bad_ctor.c — a static constructor, which the loader must refuse. */
#include "bcship.h"

static uint64_t ready;

__attribute__((constructor)) static void init(void) { ready = 1; }

BC_ENTRY int64_t t_ctor(bc_ctx *ctx, const void *arg, uint64_t n) {
  return (int64_t)ready;
}
