/* softfp.c — test kernel for the host runtime's binary128 soft-float
 * helpers. Every operation is written with the C type (aarch64 long double,
 * x86_64 __float128), so clang picks the helper calls itself.
 *
 * Each entry processes arg as an array of fixed-size records (32 bytes;
 * 64 for the complex ones), one operation per record, writes each result
 * over the start of its record, and returns the number of records.
 * binary128 values are 16 little-endian bytes. */
#include "bcship.h"

#if defined(__aarch64__)
typedef long double f128;
typedef _Complex long double c128;
#else
typedef __float128 f128;
typedef _Complex __float128 c128;
#endif

#define REC 32

static f128 ld(const uint8_t *p) {
  f128 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

static void st(uint8_t *p, f128 v) { __builtin_memcpy(p, &v, sizeof v); }

#define LD(T, p)                                                              \
  ({                                                                          \
    T v_;                                                                     \
    __builtin_memcpy(&v_, (p), sizeof v_);                                    \
    v_;                                                                       \
  })
#define ST(T, p, x)                                                           \
  do {                                                                        \
    T v_ = (x);                                                               \
    __builtin_memcpy((p), &v_, sizeof v_);                                    \
  } while (0)

/* EACH declares entry name running body once per record r. */
#define EACH(name, size, ...)                                                  \
  BC_ENTRY int64_t name(bc_ctx *ctx, const void *arg, uint64_t n) {          \
    (void)ctx;                                                                \
    uint8_t *base = (uint8_t *)arg;                                           \
    int64_t k = 0;                                                            \
    for (uint64_t i = 0; i + (size) <= n; i += (size), k++) {                 \
      uint8_t *r = base + i;                                                  \
      __VA_ARGS__;                                                            \
    }                                                                         \
    return k;                                                                 \
  }

EACH(f128_add, REC, st(r, ld(r) + ld(r + 16)))
EACH(f128_sub, REC, st(r, ld(r) - ld(r + 16)))
EACH(f128_mul, REC, st(r, ld(r) * ld(r + 16)))
EACH(f128_div, REC, st(r, ld(r) / ld(r + 16)))
EACH(f128_neg, REC, st(r, -ld(r)))

/* The comparisons as C operators, one bit each. */
EACH(f128_cmp, REC, {
  f128 a = ld(r), b = ld(r + 16);
  uint64_t m = (uint64_t)(a == b) | (uint64_t)(a != b) << 1 |
               (uint64_t)(a < b) << 2 | (uint64_t)(a <= b) << 3 |
               (uint64_t)(a > b) << 4 | (uint64_t)(a >= b) << 5 |
               (uint64_t)__builtin_isunordered(a, b) << 6;
  ST(uint64_t, r, m);
})

/* The helpers' raw return values (int on aarch64, long on x86_64; the low
 * 32 bits are the same), one byte each. */
int __eqtf2(f128, f128);
int __netf2(f128, f128);
int __lttf2(f128, f128);
int __letf2(f128, f128);
int __gttf2(f128, f128);
int __getf2(f128, f128);
int __unordtf2(f128, f128);
EACH(f128_cmpraw, REC, {
  f128 a = ld(r), b = ld(r + 16);
  int8_t v[8] = {(int8_t)__eqtf2(a, b), (int8_t)__netf2(a, b),
                 (int8_t)__lttf2(a, b), (int8_t)__letf2(a, b),
                 (int8_t)__gttf2(a, b), (int8_t)__getf2(a, b),
                 (int8_t)__unordtf2(a, b), 0};
  __builtin_memcpy(r, v, 8);
})

EACH(f128_from_f32, REC, st(r, (f128)LD(float, r)))
EACH(f128_from_f64, REC, st(r, (f128)LD(double, r)))
EACH(f128_to_f32, REC, ST(float, r, (float)ld(r)))
EACH(f128_to_f64, REC, ST(double, r, (double)ld(r)))

EACH(f128_to_i32, REC, ST(int64_t, r, (int32_t)ld(r)))
EACH(f128_to_i64, REC, ST(int64_t, r, (int64_t)ld(r)))
EACH(f128_to_u32, REC, ST(uint64_t, r, (uint32_t)ld(r)))
EACH(f128_to_u64, REC, ST(uint64_t, r, (uint64_t)ld(r)))
EACH(f128_to_i128, REC, ST(__int128, r, (__int128)ld(r)))
EACH(f128_to_u128, REC, ST(unsigned __int128, r, (unsigned __int128)ld(r)))

EACH(f128_from_i32, REC, st(r, (f128)LD(int32_t, r)))
EACH(f128_from_i64, REC, st(r, (f128)LD(int64_t, r)))
EACH(f128_from_u32, REC, st(r, (f128)LD(uint32_t, r)))
EACH(f128_from_u64, REC, st(r, (f128)LD(uint64_t, r)))
EACH(f128_from_i128, REC, st(r, (f128)LD(__int128, r)))
EACH(f128_from_u128, REC, st(r, (f128)LD(unsigned __int128, r)))

/* a at 0, int32 exponent at 16. */
#if defined(__aarch64__)
#define POWI __builtin_powil
#else
f128 __powitf2(f128, int); /* clang 14 has no __float128 powi builtin */
#define POWI __powitf2
#endif
EACH(f128_powi, REC, st(r, POWI(ld(r), LD(int32_t, r + 16))))

/* (a + bi) op (c + di) from 64-byte records; re at 0, im at 16. */
static c128 cpx(const uint8_t *p) {
  c128 z;
  __real__ z = ld(p);
  __imag__ z = ld(p + 16);
  return z;
}
EACH(c128_mul, 64, {
  c128 z = cpx(r) * cpx(r + 32);
  st(r, __real__ z);
  st(r + 16, __imag__ z);
})
EACH(c128_div, 64, {
  c128 z = cpx(r) / cpx(r + 32);
  st(r, __real__ z);
  st(r + 16, __imag__ z);
})

/* _Float16 bits at 0. */
#if defined(__aarch64__)
EACH(f128_from_f16, REC, st(r, (f128)LD(_Float16, r)))
EACH(f128_to_f16, REC, ST(_Float16, r, (_Float16)ld(r)))
#else
/* clang 14 has no _Float16 on x86_64: call the helpers as the psABI would
 * pass one, in the low 16 bits of xmm0. */
f128 __extendhftf2(float);
float __trunctfhf2(f128);
EACH(f128_from_f16, REC, {
  uint32_t h = LD(uint16_t, r);
  st(r, __extendhftf2(LD(float, &h)));
})
EACH(f128_to_f16, REC, {
  float f = __trunctfhf2(ld(r));
  ST(uint16_t, r, (uint16_t)LD(uint32_t, &f));
})
#endif
