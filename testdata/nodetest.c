/* nodetest.c — small kernels for the node runtime's tests (package bcship):
 * each exercises one helper or one failure. Built by the tests with the
 * toolchain when clang is installed. */
#include "bcship.h"

/* echo replies with its argument. */
BC_ENTRY int64_t echo(bc_ctx *ctx, const void *arg, uint64_t n) {
  bc_reply(ctx, arg, n);
  return (int64_t)n;
}

/* fault dereferences a null pointer. */
BC_ENTRY int64_t fault(bc_ctx *ctx, const void *arg, uint64_t n) {
  volatile int64_t *p = (volatile int64_t *)(uintptr_t)(n & 0);
  return *p;
}

/* spin never returns on its own. */
BC_ENTRY int64_t spin(bc_ctx *ctx, const void *arg, uint64_t n) {
  volatile uint64_t i = 0;
  for (;;)
    i++;
  return 0;
}

/* pingpong forwards itself between nodes 1 and 2 forever: TTL stops it. */
BC_ENTRY int64_t pingpong(bc_ctx *ctx, const void *arg, uint64_t n) {
  uint32_t next = bc_self(ctx) == 1 ? 2 : 1;
  return bc_forward(ctx, next, arg, n);
}

/* noreply returns 42 without replying. */
BC_ENTRY int64_t noreply(bc_ctx *ctx, const void *arg, uint64_t n) {
  bc_log(ctx, "noreply ran");
  return 42;
}

struct xfer {
  uint32_t node;
  uint32_t len;
  uint64_t off;
  char region[16];
  uint8_t data[32];
};

/* putter writes x.data to region x.region at x.off on node x.node, then
 * invokes echo there with the same argument. */
BC_ENTRY int64_t putter(bc_ctx *ctx, const void *arg, uint64_t n) {
  if (n != sizeof(struct xfer))
    return -1;
  const struct xfer *x = arg;
  if (bc_put(ctx, x->node, x->region, x->off, x->data, x->len) != 0)
    return -2;
  return bc_invoke(ctx, x->node, "echo", arg, n);
}

/* getter fetches x.len bytes at x.off of x.region on x.node and continues
 * in got, here. */
BC_ENTRY int64_t getter(bc_ctx *ctx, const void *arg, uint64_t n) {
  if (n != sizeof(struct xfer))
    return -1;
  const struct xfer *x = arg;
  return bc_get(ctx, x->node, x->region, x->off, x->len, "got");
}

/* got replies with the fetched bytes and says where it ran. */
BC_ENTRY int64_t got(bc_ctx *ctx, const void *arg, uint64_t n) {
  bc_reply(ctx, arg, n);
  return bc_self(ctx);
}

/* busy counts down the 64-bit count in its argument, then replies it. */
BC_ENTRY int64_t busy(bc_ctx *ctx, const void *arg, uint64_t n) {
  volatile uint64_t i = 0;
  uint64_t count = 0;
  if (n >= 8)
    memcpy(&count, arg, 8);
  for (i = count; i > 0; i--)
    ;
  bc_reply(ctx, &count, sizeof count);
  return 0;
}
