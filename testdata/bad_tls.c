/* bad_tls.c — thread-local storage, which the loader must refuse. */
#include "bcship.h"

_Thread_local uint64_t per_thread;

BC_ENTRY int64_t t_tls(bc_ctx *ctx, const void *arg, uint64_t n) {
  return (int64_t)++per_thread;
}
