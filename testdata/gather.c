/* gather.c — fetch scattered values with one shipped kernel per owner, an
 * X-RDMA operation.
 *
 * Every node registers a region "gather" of 64-bit values. The origin
 * groups the indices it wants by owner and sends each owner one kernel with
 * its list; the owner replies with all the values at once, where GET-driven
 * code would need a round trip per value. */
#include "bcship.h"

#define MAX_INDICES 4096

BC_ENTRY int64_t gather(bc_ctx *ctx, const void *arg, uint64_t n) {
  /* arg: uint64_t count, then count uint64_t indices. */
  if (n < 8)
    return -1;
  uint64_t count;
  memcpy(&count, arg, 8);
  if (count > MAX_INDICES || n < 8 + count * 8)
    return -1;
  uint64_t len;
  const uint64_t *v = bc_region(ctx, "gather", &len);
  if (!v)
    return -2;
  uint64_t nvals = len / 8;
  uint64_t out[MAX_INDICES];
  const uint8_t *idx = (const uint8_t *)arg + 8;
  for (uint64_t i = 0; i < count; i++) {
    uint64_t k;
    memcpy(&k, idx + 8 * i, 8);
    if (k >= nvals)
      return -3;
    out[i] = v[k];
  }
  return bc_reply(ctx, out, count * 8);
}
