/* faults.c — kernels for the executor's tests: ordinary ones whose results
 * and outbox the tests check, and ones that fault or never return. One bad
 * kernel must cost one error, never the node. */
#include "bcship.h"

#define ARG(i) (((const uint64_t *)arg)[i])

/* Replies with the argument reversed, logs, and returns its length. */
BC_ENTRY int64_t k_echo(bc_ctx *ctx, const void *arg, uint64_t n) {
  uint8_t buf[256];
  const uint8_t *p = arg;
  if (n > sizeof buf)
    return -1;
  for (uint64_t i = 0; i < n; i++)
    buf[i] = p[n - 1 - i];
  bc_log(ctx, "echo");
  if (bc_reply(ctx, buf, n) != 0)
    return -2;
  return (int64_t)n;
}

/* Sums the 64-bit words of region "data" and replies the sum twice. */
BC_ENTRY int64_t k_region(bc_ctx *ctx, const void *arg, uint64_t n) {
  uint64_t len;
  const uint64_t *d = bc_region(ctx, "data", &len);
  if (!d)
    return -1;
  uint64_t s = 0;
  for (uint64_t i = 0; i < len / 8; i++)
    s += d[i];
  bc_reply(ctx, &s, sizeof s);
  bc_reply(ctx, &s, sizeof s);
  if (bc_region(ctx, "missing", &len) != 0 || len != 0)
    return -2;
  return (int64_t)bc_self(ctx) * 1000 + bc_nodes(ctx);
}

/* Fills the outbox until it refuses. */
BC_ENTRY int64_t k_flood(bc_ctx *ctx, const void *arg, uint64_t n) {
  int64_t sent = 0;
  uint8_t chunk[100] = {0};
  while (bc_reply(ctx, chunk, sizeof chunk) == 0)
    sent++;
  return sent;
}

/* Uses 512 KiB of stack. */
BC_ENTRY int64_t k_stack512(bc_ctx *ctx, const void *arg, uint64_t n) {
  volatile uint8_t big[512 * 1024];
  for (uint64_t i = 0; i < sizeof big; i += 4096)
    big[i] = (uint8_t)(i >> 12);
  uint64_t s = 0;
  for (uint64_t i = 0; i < sizeof big; i += 4096)
    s += big[i];
  return (int64_t)s;
}

BC_ENTRY int64_t k_null(bc_ctx *ctx, const void *arg, uint64_t n) {
  *(volatile uint64_t *)ARG(0) = 1; /* the test passes 0 */
  return 0;
}

static const uint64_t constant = 42;

BC_ENTRY int64_t k_rodata(bc_ctx *ctx, const void *arg, uint64_t n) {
  *(volatile uint64_t *)&constant = 7;
  return (int64_t)constant;
}

/* Jumps to the address in the argument. */
BC_ENTRY int64_t k_jump(bc_ctx *ctx, const void *arg, uint64_t n) {
  int64_t (*f)(void) = (int64_t(*)(void))ARG(0);
  return f();
}

BC_ENTRY int64_t k_trap(bc_ctx *ctx, const void *arg, uint64_t n) {
  if (n < 1000)
    __builtin_trap();
  return 0;
}

BC_ENTRY int64_t k_div(bc_ctx *ctx, const void *arg, uint64_t n) {
  volatile int64_t a = (int64_t)ARG(0), b = (int64_t)ARG(1);
  return a / b;
}

static int64_t recurse(volatile uint64_t *depth) {
  volatile uint8_t frame[256];
  frame[0] = (uint8_t)*depth;
  (*depth)++;
  return recurse(depth) + frame[0];
}

BC_ENTRY int64_t k_recurse(bc_ctx *ctx, const void *arg, uint64_t n) {
  volatile uint64_t depth = 0;
  return recurse(&depth);
}

BC_ENTRY int64_t k_spin(bc_ctx *ctx, const void *arg, uint64_t n) {
  volatile uint64_t i = 0;
  for (;;)
    i++;
  return (int64_t)i;
}
