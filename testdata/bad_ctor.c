/* bad_ctor.c — a static constructor, which the loader must refuse: nothing
 * would run it. It calls out so clang cannot evaluate it at compile time. */
#include "bcship.h"

extern uint64_t host_init(void);
static uint64_t ready;

__attribute__((constructor)) static void init(void) { ready = host_init(); }

BC_ENTRY int64_t t_ctor(bc_ctx *ctx, const void *arg, uint64_t n) {
  return (int64_t)ready;
}
