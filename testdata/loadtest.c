/* loadtest.c — kernels that exercise the loader: every construct here makes
 * clang emit a different kind of section or relocation. Each entry takes
 * its inputs as an array of uint64_t in arg; loader_test.go computes the
 * same results in Go. Built by `make testdata` at -O0…-O3/-Os, PIC and not,
 * in every code model, for x86_64 and aarch64. */
#include "bcship.h"

#define ARG(i) (((const uint64_t *)arg)[i])

/* Host symbols, provided by the test's SymbolTable. */
extern uint64_t host_mix(uint64_t a, uint64_t b);
extern const uint64_t host_table[16];

/* ---- arithmetic ---- */
BC_ENTRY int64_t t_arith(bc_ctx *ctx, const void *arg, uint64_t n) {
  int64_t a = (int64_t)ARG(0), b = (int64_t)ARG(1);
  return a * 7 - b / 3 + (a ^ b) % 11 + (a << 3) - (b >> 2);
}

/* ---- switch: enough dense cases for a jump table ---- */
static int64_t sw(uint64_t k) {
  switch (k) {
  case 0: return 11;
  case 1: return 23;
  case 2: return 37;
  case 3: return 41;
  case 4: return 53;
  case 5: return 67;
  case 6: return 79;
  case 7: return 83;
  case 8: return 97;
  case 9: return 101;
  case 10: return 113;
  case 11: return 127;
  default: return -1;
  }
}

BC_ENTRY int64_t t_switch(bc_ctx *ctx, const void *arg, uint64_t n) {
  int64_t s = 0;
  for (uint64_t i = 0; i < ARG(0); i++)
    s = s * 3 + sw(i % 13);
  return s;
}

/* ---- function-pointer table (.data.rel.ro when PIC) ---- */
static int64_t op_add(int64_t a, int64_t b) { return a + b; }
static int64_t op_sub(int64_t a, int64_t b) { return a - b; }
static int64_t op_mul(int64_t a, int64_t b) { return a * b; }
static int64_t op_xor(int64_t a, int64_t b) { return a ^ b; }
static int64_t (*const ops[4])(int64_t, int64_t) = {op_add, op_sub, op_mul,
                                                    op_xor};

BC_ENTRY int64_t t_fptable(bc_ctx *ctx, const void *arg, uint64_t n) {
  int64_t acc = (int64_t)ARG(0);
  for (uint64_t i = 0; i < ARG(1); i++)
    acc = ops[i & 3](acc, (int64_t)i + 1);
  return acc;
}

/* ---- .data and .bss ---- */
uint64_t counter_data = 1000;
uint64_t counter_bss;
static uint64_t history[64];

BC_ENTRY int64_t t_data(bc_ctx *ctx, const void *arg, uint64_t n) {
  counter_data += ARG(0);
  counter_bss += 1;
  history[counter_bss & 63] = counter_data;
  return (int64_t)(counter_data * 1000 + counter_bss + history[counter_bss & 63] % 7);
}

/* ---- memcpy in a loop, with runtime lengths so it stays a call ---- */
BC_ENTRY int64_t t_memcpy(bc_ctx *ctx, const void *arg, uint64_t n) {
  static uint8_t src[256], dst[256];
  for (int i = 0; i < 256; i++)
    src[i] = (uint8_t)(i * 7 + ARG(0));
  uint64_t sum = 0;
  for (uint64_t len = 1; len <= ARG(1) && len <= 256; len++) {
    memcpy(dst, src + (256 - len), len);
    sum = sum * 31 + dst[len - 1] + dst[0];
  }
  memset(dst, 0, sizeof dst);
  return (int64_t)sum + memcmp(src, dst, 256);
}

/* ---- floating point (constants land in .rodata.cst*) ---- */
/* No fused multiply-add: the Go reference rounds every operation. */
#pragma STDC FP_CONTRACT OFF
BC_ENTRY int64_t t_float(bc_ctx *ctx, const void *arg, uint64_t n) {
  double x = (double)ARG(0) / 8.0;
  float f = 1.5f;
  double acc = 0.25;
  for (uint64_t i = 0; i < ARG(1); i++) {
    acc = acc * 1.0000001 + x / (i + 1.5);
    f = f * 0.75f + 0.125f;
  }
  return (int64_t)(acc * 1000.0) + (int64_t)(f * 1000.0f);
}

/* ---- a host function and host data from the SymbolTable ---- */
BC_ENTRY int64_t t_host(bc_ctx *ctx, const void *arg, uint64_t n) {
  uint64_t h = ARG(0);
  for (int i = 0; i < 16; i++)
    h = host_mix(h, host_table[i]);
  return (int64_t)h;
}

/* ---- 128-bit division (calls __udivti3 and friends) ---- */
BC_ENTRY int64_t t_div128(bc_ctx *ctx, const void *arg, uint64_t n) {
  unsigned __int128 a = ((unsigned __int128)ARG(0) << 64) | ARG(1);
  unsigned __int128 b = ((unsigned __int128)ARG(2) << 64) | ARG(3);
  __int128 sa = (__int128)a, sb = -(__int128)b;
  unsigned __int128 q = a / b, r = a % b;
  __int128 sq = sa / sb, sr = sa % sb;
  return (int64_t)((uint64_t)q ^ (uint64_t)(q >> 64) * 3 ^ (uint64_t)r * 5 ^
                   (uint64_t)(r >> 64) * 7 ^ (uint64_t)sq * 11 ^
                   (uint64_t)(sq >> 64) * 13 ^ (uint64_t)sr * 17 ^
                   (uint64_t)(sr >> 64) * 19);
}

/* ---- a large struct copied by value ---- */
struct big {
  uint64_t v[160];
  uint8_t tail[13];
};

static struct big make_big(uint64_t seed) {
  struct big b;
  for (int i = 0; i < 160; i++)
    b.v[i] = seed * (i + 1);
  for (int i = 0; i < 13; i++)
    b.tail[i] = (uint8_t)(seed + i);
  return b;
}

static __attribute__((noinline)) uint64_t sum_big(struct big b) {
  uint64_t s = 0;
  for (int i = 0; i < 160; i++)
    s ^= b.v[i] + (uint64_t)i;
  for (int i = 0; i < 13; i++)
    s += b.tail[i];
  return s;
}

BC_ENTRY int64_t t_bigstruct(bc_ctx *ctx, const void *arg, uint64_t n) {
  struct big a = make_big(ARG(0));
  struct big b = a; /* copy */
  b.v[7] = 0;
  return (int64_t)(sum_big(a) * 3 + sum_big(b));
}

/* ---- a static-local table built on first use ---- */
BC_ENTRY int64_t t_lazy(bc_ctx *ctx, const void *arg, uint64_t n) {
  static uint32_t crc_table[256];
  static int built;
  if (!built) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      crc_table[i] = c;
    }
    built = 1;
  }
  const uint8_t *p = (const uint8_t *)arg;
  uint32_t c = 0xffffffffu;
  for (uint64_t i = 0; i < n; i++)
    c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return (int64_t)(c ^ 0xffffffffu);
}

/* ---- strings in .rodata.str, a const table in .rodata ---- */
static const char *const names[] = {"alpha", "beta", "gamma", "delta"};

BC_ENTRY int64_t t_strings(bc_ctx *ctx, const void *arg, uint64_t n) {
  int64_t s = 0;
  for (int i = 0; i < 4; i++)
    for (const char *c = names[(i + ARG(0)) & 3]; *c; c++)
      s = s * 131 + *c;
  return s;
}

/* ---- PC-relative and absolute data relocations (R_X86_64_PC32 and
 * R_AARCH64_PREL32 in data, R_*_64 / ABS64) from a hand-written table, as
 * position-independent jump tables and vtables use them. ---- */
static __attribute__((used)) uint64_t rel_target[4] = {3, 5, 7, 11};
__asm__(".section .rodata.reltab,\"a\"\n"
        ".p2align 3\n"
        ".globl reltab\n"
        "reltab:\n"
        ".long rel_target - reltab\n"
        ".long rel_target + 16 - reltab\n"
        ".quad rel_target + 8\n"
        ".text\n");
extern const int32_t reltab[4];

BC_ENTRY int64_t t_reltab(bc_ctx *ctx, const void *arg, uint64_t n) {
  const char *base = (const char *)reltab;
  const uint64_t *a = (const uint64_t *)(base + reltab[0]);
  const uint64_t *b = (const uint64_t *)(base + reltab[1]);
  const uint64_t *c = *(const uint64_t *const *)&reltab[2];
  return (int64_t)(a[0] * 100 + b[0] * 10 + c[0] + ARG(0));
}
