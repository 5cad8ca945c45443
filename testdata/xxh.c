/* xxh.c — real third-party code compiled freestanding: the header-only
 * xxHash from Debian's libxxhash-dev, with the shim headers standing in
 * for the C library. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "bcship.h"

BC_ENTRY int64_t t_xxh64(bc_ctx *ctx, const void *arg, uint64_t n) {
  return (int64_t)XXH64(arg, n, 7);
}

BC_ENTRY int64_t t_xxh3(bc_ctx *ctx, const void *arg, uint64_t n) {
  return (int64_t)XXH3_64bits(arg, n);
}

