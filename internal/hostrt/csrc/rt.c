/* rt.c — bcship's host runtime: the C helpers every kernel may call.
 *
 * It is compiled freestanding for each supported triple (see the Makefile's
 * hostrt target), committed, embedded into the Go binary and loaded by
 * bcship's own loader before any kernel. It must not have undefined symbols:
 * TestRuntimeSelfContained checks that, because clang likes to turn copy
 * loops into calls to memcpy.
 *
 * Helpers never block and never call into Go: they append records to the
 * invocation's outbox, which Go drains after the kernel returns. The layout
 * of struct bc_ctx and of an outbox record is mirrored in ../ctx.go; the Go
 * tests pin both.
 */
#include "bcship.h"

struct bc_region_desc {
  const char *name;
  uint64_t name_len;
  void *base;
  uint64_t len;
};

struct bc_ctx {
  uint8_t *outbox;
  uint64_t outbox_cap;
  uint64_t outbox_len;
  uint64_t dropped; /* records that did not fit */
  const struct bc_region_desc *regions;
  uint64_t nregions;
  uint32_t self;
  uint32_t nodes;
};

/* Pinned to the ...Offset constants of ../ctx.go. */
#define OFF(f, v) _Static_assert(__builtin_offsetof(struct bc_ctx, f) == v, #f)
OFF(outbox, 0);
OFF(outbox_cap, 8);
OFF(outbox_len, 16);
OFF(dropped, 24);
OFF(regions, 32);
OFF(nregions, 40);
OFF(self, 48);
OFF(nodes, 52);
_Static_assert(sizeof(struct bc_ctx) == 56, "sizeof bc_ctx");
_Static_assert(sizeof(struct bc_region_desc) == 32, "sizeof bc_region_desc");

/* Outbox record header; a bytes then b bytes follow, padded to 8. */
struct bc_rec {
  uint32_t op;
  uint32_t node;
  uint64_t off;
  uint64_t n;
  uint32_t alen;
  uint32_t blen;
};
_Static_assert(sizeof(struct bc_rec) == 32, "sizeof bc_rec");

enum {
  BC_OP_REPLY = 1,
  BC_OP_FORWARD = 2,
  BC_OP_INVOKE = 3,
  BC_OP_PUT = 4,
  BC_OP_GET = 5,
  BC_OP_LOG = 6,
};

/* ---- memory primitives ------------------------------------------------ */

/* The loops below are written byte- and word-wise on purpose; the Makefile
 * compiles this file with -fno-builtin and the loop idioms disabled so they
 * do not become calls to themselves. */

void *memcpy(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  if ((((uintptr_t)d | (uintptr_t)s) & 7) == 0) {
    for (; n >= 8; n -= 8, d += 8, s += 8)
      *(uint64_t *)d = *(const uint64_t *)s;
  }
  for (; n > 0; n--)
    *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  if (d == s || n == 0)
    return dst;
  if (d < s || d >= s + n)
    return memcpy(dst, src, n);
  /* Overlap with dst above src: copy backwards. */
  d += n;
  s += n;
  while (n-- > 0)
    *--d = *--s;
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  uint8_t *d = dst;
  uint8_t b = (uint8_t)c;
  if (((uintptr_t)d & 7) == 0 && n >= 8) {
    uint64_t w = b * 0x0101010101010101ull;
    for (; n >= 8; n -= 8, d += 8)
      *(uint64_t *)d = w;
  }
  for (; n > 0; n--)
    *d++ = b;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const uint8_t *x = a, *y = b;
  for (; n > 0; n--, x++, y++) {
    if (*x != *y)
      return *x < *y ? -1 : 1;
  }
  return 0;
}

/* ---- compiler-rt: 128-bit integer division ---------------------------- */

typedef unsigned __int128 u128;
typedef __int128 i128;

/* clz128 counts leading zeros of a non-zero value. */
static int clz128(u128 v) {
  uint64_t hi = (uint64_t)(v >> 64);
  return hi ? __builtin_clzll(hi) : 64 + __builtin_clzll((uint64_t)v);
}

/* udivmod128 divides with 64-bit operations only: a 128-bit '/' here would
 * compile to a call to __udivti3 itself. Shift-subtract, one bit per step,
 * starting at the divisor's highest useful shift. */
static u128 udivmod128(u128 n, u128 d, u128 *rem) {
  if (d == 0) {
    /* Division by zero is undefined behaviour in C; trap like hardware. */
    __builtin_trap();
  }
  uint64_t nhi = (uint64_t)(n >> 64), dhi = (uint64_t)(d >> 64);
  if (nhi == 0 && dhi == 0) {
    uint64_t nl = (uint64_t)n, dl = (uint64_t)d;
    if (rem)
      *rem = nl % dl;
    return nl / dl;
  }
  if (d > n) {
    if (rem)
      *rem = n;
    return 0;
  }
  int shift = clz128(d) - clz128(n); /* d <= n, so shift >= 0 */
  u128 q = 0;
  u128 ds = d << shift;
  for (; shift >= 0; shift--, ds >>= 1) {
    q <<= 1;
    if (n >= ds) {
      n -= ds;
      q |= 1;
    }
  }
  if (rem)
    *rem = n;
  return q;
}

u128 __udivmodti4(u128 a, u128 b, u128 *rem) { return udivmod128(a, b, rem); }
u128 __udivti3(u128 a, u128 b) { return udivmod128(a, b, 0); }

u128 __umodti3(u128 a, u128 b) {
  u128 r;
  udivmod128(a, b, &r);
  return r;
}

static u128 uabs128(i128 v) { return v < 0 ? -(u128)v : (u128)v; }

i128 __divti3(i128 a, i128 b) {
  u128 q = udivmod128(uabs128(a), uabs128(b), 0);
  return ((a < 0) != (b < 0)) ? -(i128)q : (i128)q;
}

i128 __modti3(i128 a, i128 b) {
  u128 r;
  udivmod128(uabs128(a), uabs128(b), &r);
  return a < 0 ? -(i128)r : (i128)r;
}

/* ---- bcship helpers --------------------------------------------------- */

static uint64_t cstrlen(const char *s) {
  uint64_t n = 0;
  if (!s)
    return 0;
  while (s[n])
    n++;
  return n;
}

static int push(bc_ctx *ctx, uint32_t op, uint32_t node, uint64_t off,
                uint64_t n, const void *a, uint64_t alen, const void *b,
                uint64_t blen) {
  if (alen > 0xffffffffu || blen > 0xffffffffu) {
    ctx->dropped++;
    return -1;
  }
  uint64_t need = sizeof(struct bc_rec) + ((alen + blen + 7) & ~7ull);
  if (ctx->outbox_len > ctx->outbox_cap ||
      need > ctx->outbox_cap - ctx->outbox_len) {
    ctx->dropped++;
    return -1;
  }
  uint8_t *p = ctx->outbox + ctx->outbox_len;
  struct bc_rec h = {op, node, off, n, (uint32_t)alen, (uint32_t)blen};
  memcpy(p, &h, sizeof h);
  p += sizeof h;
  if (alen)
    memcpy(p, a, alen);
  if (blen)
    memcpy(p + alen, b, blen);
  memset(p + alen + blen, 0, need - sizeof h - alen - blen);
  ctx->outbox_len += need;
  return 0;
}

void *bc_region(bc_ctx *ctx, const char *name, uint64_t *len) {
  uint64_t n = cstrlen(name);
  for (uint64_t i = 0; i < ctx->nregions; i++) {
    const struct bc_region_desc *r = &ctx->regions[i];
    if (r->name_len == n && memcmp(r->name, name, n) == 0) {
      if (len)
        *len = r->len;
      return r->base;
    }
  }
  if (len)
    *len = 0;
  return 0;
}

int bc_reply(bc_ctx *ctx, const void *p, uint64_t n) {
  return push(ctx, BC_OP_REPLY, 0, 0, 0, p, n, 0, 0);
}

int bc_forward(bc_ctx *ctx, uint32_t node, const void *arg, uint64_t n) {
  return push(ctx, BC_OP_FORWARD, node, 0, 0, arg, n, 0, 0);
}

int bc_invoke(bc_ctx *ctx, uint32_t node, const char *entry, const void *arg,
              uint64_t n) {
  return push(ctx, BC_OP_INVOKE, node, 0, 0, entry, cstrlen(entry), arg, n);
}

int bc_put(bc_ctx *ctx, uint32_t node, const char *region, uint64_t off,
           const void *p, uint64_t n) {
  return push(ctx, BC_OP_PUT, node, off, n, region, cstrlen(region), p, n);
}

int bc_get(bc_ctx *ctx, uint32_t node, const char *region, uint64_t off,
           uint64_t n, const char *then_entry) {
  return push(ctx, BC_OP_GET, node, off, n, region, cstrlen(region),
              then_entry, cstrlen(then_entry));
}

uint32_t bc_self(bc_ctx *ctx) { return ctx->self; }
uint32_t bc_nodes(bc_ctx *ctx) { return ctx->nodes; }

void bc_log(bc_ctx *ctx, const char *msg) {
  push(ctx, BC_OP_LOG, 0, 0, 0, msg, cstrlen(msg), 0, 0);
}

/* IEEE binary128 soft-float helpers (long double on aarch64). */
#include "softfp.c"
