/* softfp.c — IEEE 754 binary128 soft-float helpers with compiler-rt names
 * and calling conventions. rt.c includes this file at its end, so the
 * runtime stays one translation unit per architecture.
 *
 * clang lowers every operation on aarch64 `long double` (and on x86_64
 * `__float128`) to these calls. The arithmetic is integer-only: values are
 * handled as their unsigned __int128 encodings, and the float types appear
 * only in signatures so that arguments arrive in the registers the callers
 * use (q/xmm registers). No 128-bit division is used.
 *
 * Semantics: round to nearest, ties to even; no exception flags. NaN
 * results are quiet: an input NaN is returned quieted, chosen like AArch64
 * does (first signalling NaN, else first quiet NaN, a before b); invalid
 * operations return the default NaN 0x7fff8000…0 (positive). Conversions
 * to integers truncate toward zero and saturate to the target's range; NaN
 * converts to 0 — as AArch64's FCVTZS/FCVTZU do for double, so long double
 * behaves like double there. (compiler-rt instead saturates NaN by sign.)
 */

/* _Complex does not combine with a typedef name, hence both types. */
#if defined(__aarch64__)
typedef long double f128_t; /* binary128 on aarch64 Linux */
typedef _Complex long double c128_t;
#else
typedef __float128 f128_t;
typedef _Complex __float128 c128_t;
#endif

/* Comparison results are int on aarch64 and long elsewhere, as compiler-rt
 * and libgcc declare them. */
#if defined(__aarch64__)
typedef int cmp_t;
#else
typedef long cmp_t;
#endif

typedef union {
  f128_t f;
  u128 u;
} f128_pun;

static inline u128 q_bits(f128_t f) {
  f128_pun p;
  p.f = f;
  return p.u;
}

static inline f128_t q_float(u128 u) {
  f128_pun p;
  p.u = u;
  return p.f;
}

#define Q_MBITS 112
#define Q_EBITS 15
#define Q_SIGN ((u128)1 << 127)
#define Q_INF ((u128)0x7fff << 112)
#define Q_QUIET ((u128)1 << 111)
#define Q_NAN (Q_INF | Q_QUIET) /* default NaN */
#define Q_ONE ((u128)0x3fff << 112)

enum { K_ZERO, K_FINITE, K_INF, K_NAN };

/* unp is an unpacked value: for K_FINITE, (-1)^sign * sig * 2^exp; for
 * K_NAN, sig holds the fraction field (the payload). */
struct unp {
  int cls;
  int sign;
  int exp;
  u128 sig;
};

/* unpack decodes x in a binary interchange format with mbits fraction bits
 * and ebits exponent bits (all formats here share one code path). */
static struct unp unpack(u128 x, int mbits, int ebits) {
  struct unp r;
  int emax = (1 << ebits) - 1;
  int bias = (1 << (ebits - 1)) - 1;
  u128 frac = x & (((u128)1 << mbits) - 1);
  int e = (int)(x >> mbits) & emax;
  r.sign = (int)(x >> (mbits + ebits)) & 1;
  r.sig = frac;
  r.exp = 0;
  if (e == emax) {
    r.cls = frac ? K_NAN : K_INF;
    return r;
  }
  if (e == 0) {
    if (frac == 0) {
      r.cls = K_ZERO;
      return r;
    }
    e = 1; /* subnormal: same scale as the smallest normal, no hidden bit */
  } else {
    r.sig |= (u128)1 << mbits;
  }
  r.cls = K_FINITE;
  r.exp = e - bias - mbits;
  return r;
}

/* round_pack rounds (-1)^sign * sig * 2^exp to nearest even in the format
 * with mbits fraction and ebits exponent bits and returns the encoding
 * (overflow gives infinity, underflow a subnormal or zero).
 *
 * Callers that drop low bits OR them into bit 0 of sig ("jamming"). That is
 * exact for rounding as long as bit 0 ends up below the rounding bit, i.e.
 * sig is at least mbits+3 bits wide whenever something was jammed; every
 * caller keeps more than that. */
static u128 round_pack(int sign, int exp, u128 sig, int mbits, int ebits) {
  int bias = (1 << (ebits - 1)) - 1;
  int emaxb = (1 << ebits) - 2; /* largest biased exponent of a finite value */
  u128 s = (u128)sign << (mbits + ebits);
  if (sig == 0)
    return s;
  int n = clz128(sig);
  sig <<= n;
  exp -= n;
  /* Now 2^127 <= sig: the value's unbiased exponent is exp + 127. */
  int be = exp + 127 + bias;
  if (be > emaxb)
    return s | ((u128)(emaxb + 1) << mbits);
  int shift = 128 - (mbits + 1);
  if (be < 1) {
    /* Subnormal: fewer significant bits; encode with biased exponent 0. */
    shift += 1 - be;
    be = 1;
  }
  if (shift > 128)
    return s; /* below half the smallest subnormal */
  if (shift == 128)
    return s | (u128)(sig > ((u128)1 << 127)); /* tie rounds to even (0) */
  u128 kept = sig >> shift;
  u128 rem = sig & (((u128)1 << shift) - 1);
  u128 half = (u128)1 << (shift - 1);
  kept += rem > half || (rem == half && (kept & 1));
  /* For normals kept carries the hidden bit, which adds one to the
   * exponent field, hence be - 1; a carry out of rounding moves into the
   * exponent the same way (up to infinity, whose fraction is then 0). */
  return s | (((u128)(be - 1) << mbits) + kept);
}

static inline int q_isnan(u128 x) { return (x & ~Q_SIGN) > Q_INF; }

/* nan2 picks the NaN result of an operation with a NaN operand. */
static u128 nan2(u128 a, u128 b) {
  if (q_isnan(a) && !(a & Q_QUIET))
    return a | Q_QUIET;
  if (q_isnan(b) && !(b & Q_QUIET))
    return b | Q_QUIET;
  return q_isnan(a) ? a : b;
}

/* shr_jam shifts right by d >= 0, ORing the bits shifted out into bit 0. */
static u128 shr_jam(u128 x, int d) {
  if (d == 0)
    return x;
  if (d >= 128)
    return x != 0;
  return (x >> d) | ((x << (128 - d)) != 0);
}

static u128 q_add(u128 a, u128 b) {
  if (q_isnan(a) || q_isnan(b))
    return nan2(a, b);
  u128 ma = a & ~Q_SIGN, mb = b & ~Q_SIGN;
  if (ma == Q_INF || mb == Q_INF) {
    if (ma == mb && a != b)
      return Q_NAN; /* inf - inf */
    return ma == Q_INF ? a : b;
  }
  if (mb == 0) {
    if (ma == 0)
      return a & b; /* -0 + -0 = -0; any other sum of zeros is +0 */
    return a;
  }
  if (ma == 0)
    return b;
  /* Encodings of finite values order like their magnitudes: put the larger
   * one first, so the result takes its sign and a - b never goes negative. */
  if (ma < mb) {
    u128 t = a;
    a = b;
    b = t;
  }
  struct unp x = unpack(a, Q_MBITS, Q_EBITS), y = unpack(b, Q_MBITS, Q_EBITS);
  /* 12 guard bits: the sum has at most 126 bits, and when bits are jammed
   * (exponents differ by >= 2) the difference keeps at least 123. */
  u128 xs = x.sig << 12;
  u128 ys = shr_jam(y.sig << 12, x.exp - y.exp);
  u128 r = x.sign == y.sign ? xs + ys : xs - ys;
  if (r == 0)
    return 0; /* exact cancellation is +0 when rounding to nearest */
  return round_pack(x.sign, x.exp - 12, r, Q_MBITS, Q_EBITS);
}

static u128 q_sub(u128 a, u128 b) {
  /* A NaN b is returned with its own sign, as hardware subtraction does. */
  return q_add(a, q_isnan(b) ? b : b ^ Q_SIGN);
}

/* mul128 returns the high 128 bits of a*b and whether the low half is
 * non-zero. */
static u128 mul128(u128 a, u128 b, int *lo_nonzero) {
  uint64_t a0 = (uint64_t)a, a1 = (uint64_t)(a >> 64);
  uint64_t b0 = (uint64_t)b, b1 = (uint64_t)(b >> 64);
  u128 p00 = (u128)a0 * b0, p01 = (u128)a0 * b1;
  u128 p10 = (u128)a1 * b0, p11 = (u128)a1 * b1;
  u128 mid = (p00 >> 64) + (uint64_t)p01 + (uint64_t)p10; /* < 3 * 2^64 */
  *lo_nonzero = (uint64_t)p00 != 0 || (uint64_t)mid != 0;
  return p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
}

/* norm shifts a finite value's significand so its top bit is at bit top. */
static void norm(struct unp *x, int top) {
  int n = clz128(x->sig) - (127 - top);
  x->sig <<= n;
  x->exp -= n;
}

static u128 q_mul(u128 a, u128 b) {
  if (q_isnan(a) || q_isnan(b))
    return nan2(a, b);
  struct unp x = unpack(a, Q_MBITS, Q_EBITS), y = unpack(b, Q_MBITS, Q_EBITS);
  u128 s = (u128)(x.sign ^ y.sign) << 127;
  if (x.cls == K_INF || y.cls == K_INF) {
    if (x.cls == K_ZERO || y.cls == K_ZERO)
      return Q_NAN; /* 0 * inf */
    return s | Q_INF;
  }
  if (x.cls == K_ZERO || y.cls == K_ZERO)
    return s;
  norm(&x, 127);
  norm(&y, 127);
  int sticky;
  u128 hi = mul128(x.sig, y.sig, &sticky); /* >= 2^126 */
  return round_pack(x.sign ^ y.sign, x.exp + y.exp + 128, hi | (u128)sticky,
                    Q_MBITS, Q_EBITS);
}

static u128 q_div(u128 a, u128 b) {
  if (q_isnan(a) || q_isnan(b))
    return nan2(a, b);
  struct unp x = unpack(a, Q_MBITS, Q_EBITS), y = unpack(b, Q_MBITS, Q_EBITS);
  u128 s = (u128)(x.sign ^ y.sign) << 127;
  if (x.cls == K_INF)
    return y.cls == K_INF ? Q_NAN : s | Q_INF;
  if (y.cls == K_INF)
    return s;
  if (y.cls == K_ZERO)
    return x.cls == K_ZERO ? Q_NAN : s | Q_INF;
  if (x.cls == K_ZERO)
    return s;
  norm(&x, 112);
  norm(&y, 112);
  /* Restoring division, one quotient bit per step: 117 bits (>= 116 as
   * x.sig/y.sig >= 1/2), and the remainder as sticky. */
  u128 r = x.sig, d = y.sig, q = 0;
  if (r >= d) {
    r -= d;
    q = 1;
  }
  for (int i = 0; i < 116; i++) {
    r <<= 1;
    q <<= 1;
    if (r >= d) {
      r -= d;
      q |= 1;
    }
  }
  q |= r != 0;
  return round_pack(x.sign ^ y.sign, x.exp - y.exp - 116, q, Q_MBITS, Q_EBITS);
}

/* q_cmp orders a and b: -1, 0, 1, or 2 when unordered. */
static int q_cmp(u128 a, u128 b) {
  if (q_isnan(a) || q_isnan(b))
    return 2;
  u128 ma = a & ~Q_SIGN, mb = b & ~Q_SIGN;
  if (ma == 0 && mb == 0)
    return 0; /* +0 == -0 */
  int sa = (int)(a >> 127), sb = (int)(b >> 127);
  if (sa != sb)
    return sa ? -1 : 1;
  if (ma == mb)
    return 0;
  return ((ma < mb) ^ sa) ? -1 : 1;
}

/* extend converts from a narrower format exactly. */
static u128 extend(u128 x, int mbits, int ebits) {
  struct unp u = unpack(x, mbits, ebits);
  u128 s = (u128)u.sign << 127;
  switch (u.cls) {
  case K_ZERO:
    return s;
  case K_INF:
    return s | Q_INF;
  case K_NAN:
    return s | Q_NAN | (u.sig << (Q_MBITS - mbits));
  }
  return round_pack(u.sign, u.exp, u.sig, Q_MBITS, Q_EBITS);
}

/* truncate rounds a to a narrower format; NaN payloads keep their top bits. */
static u128 truncate(u128 a, int mbits, int ebits) {
  struct unp u = unpack(a, Q_MBITS, Q_EBITS);
  u128 s = (u128)u.sign << (mbits + ebits);
  u128 inf = (((u128)1 << ebits) - 1) << mbits;
  switch (u.cls) {
  case K_ZERO:
    return s;
  case K_INF:
    return s | inf;
  case K_NAN:
    return s | inf | ((u128)1 << (mbits - 1)) | (u.sig >> (Q_MBITS - mbits));
  }
  return round_pack(u.sign, u.exp, u.sig, mbits, ebits);
}

/* fix truncates a toward zero to a bits-wide integer, saturating; NaN is 0.
 * The result is the two's complement pattern in the low bits. */
static u128 fix(u128 a, int bits, int is_signed) {
  struct unp u = unpack(a, Q_MBITS, Q_EBITS);
  if (u.cls == K_NAN || u.cls == K_ZERO)
    return 0;
  u128 lim; /* largest magnitude of the result's sign */
  if (u.sign)
    lim = is_signed ? (u128)1 << (bits - 1) : 0;
  else if (is_signed)
    lim = ((u128)1 << (bits - 1)) - 1;
  else
    lim = bits == 128 ? ~(u128)0 : ((u128)1 << bits) - 1;
  u128 mag;
  if (u.cls == K_INF || u.exp > 15) /* >= 2^128: out of every range */
    mag = ~(u128)0;
  else if (u.exp >= 0)
    mag = u.sig << u.exp;
  else
    mag = u.exp <= -128 ? 0 : u.sig >> -u.exp;
  if (mag > lim)
    mag = lim;
  return u.sign ? -mag : mag;
}

static u128 from_int(u128 mag, int neg) {
  return round_pack(neg, 0, mag, Q_MBITS, Q_EBITS);
}

/* ---- compiler-rt entry points ----------------------------------------- */

f128_t __addtf3(f128_t a, f128_t b) { return q_float(q_add(q_bits(a), q_bits(b))); }
f128_t __subtf3(f128_t a, f128_t b) { return q_float(q_sub(q_bits(a), q_bits(b))); }
f128_t __multf3(f128_t a, f128_t b) { return q_float(q_mul(q_bits(a), q_bits(b))); }
f128_t __divtf3(f128_t a, f128_t b) { return q_float(q_div(q_bits(a), q_bits(b))); }
f128_t __negtf2(f128_t a) { return q_float(q_bits(a) ^ Q_SIGN); }

/* __letf2 and its aliases answer 1 when unordered, __getf2 and __gttf2 -1,
 * so that `r <= 0`, `r < 0`, `r >= 0`, `r > 0`, `r == 0` are all false for
 * NaN and `r != 0` true. */
static cmp_t cmp_le(f128_t a, f128_t b) {
  int r = q_cmp(q_bits(a), q_bits(b));
  return r == 2 ? 1 : r;
}
static cmp_t cmp_ge(f128_t a, f128_t b) {
  int r = q_cmp(q_bits(a), q_bits(b));
  return r == 2 ? -1 : r;
}
cmp_t __letf2(f128_t a, f128_t b) { return cmp_le(a, b); }
cmp_t __lttf2(f128_t a, f128_t b) { return cmp_le(a, b); }
cmp_t __eqtf2(f128_t a, f128_t b) { return cmp_le(a, b); }
cmp_t __netf2(f128_t a, f128_t b) { return cmp_le(a, b); }
cmp_t __cmptf2(f128_t a, f128_t b) { return cmp_le(a, b); }
cmp_t __getf2(f128_t a, f128_t b) { return cmp_ge(a, b); }
cmp_t __gttf2(f128_t a, f128_t b) { return cmp_ge(a, b); }
cmp_t __unordtf2(f128_t a, f128_t b) {
  return q_isnan(q_bits(a)) || q_isnan(q_bits(b));
}

f128_t __extendsftf2(float f) {
  union {
    float f;
    uint32_t u;
  } p = {f};
  return q_float(extend(p.u, 23, 8));
}

f128_t __extenddftf2(double d) {
  union {
    double f;
    uint64_t u;
  } p = {d};
  return q_float(extend(p.u, 52, 11));
}

float __trunctfsf2(f128_t a) {
  union {
    uint32_t u;
    float f;
  } p = {(uint32_t)truncate(q_bits(a), 23, 8)};
  return p.f;
}

double __trunctfdf2(f128_t a) {
  union {
    uint64_t u;
    double f;
  } p = {(uint64_t)truncate(q_bits(a), 52, 11)};
  return p.f;
}

/* _Float16 <-> binary128. clang 14 knows _Float16 on aarch64 only; on
 * x86_64 the psABI passes and returns _Float16 in the low 16 bits of xmm0,
 * which a float carrying those bits reproduces, so newer compilers' calls
 * work there too. Both runtimes thus offer the same symbols, as hostrt.Table
 * assumes. */
#if defined(__aarch64__)
typedef _Float16 f16_t;
#else
typedef float f16_t;
#endif

f128_t __extendhftf2(f16_t h) {
  union {
    f16_t f;
    uint16_t u;
  } p = {h};
  return q_float(extend(p.u, 10, 5));
}

f16_t __trunctfhf2(f128_t a) {
  union {
    uint32_t u;
    f16_t f;
  } p = {(uint16_t)truncate(q_bits(a), 10, 5)};
  return p.f;
}

f128_t __floatsitf(int32_t i) {
  return q_float(from_int(i < 0 ? -(u128)i : (u128)i, i < 0));
}
f128_t __floatditf(int64_t i) {
  return q_float(from_int(i < 0 ? -(u128)i : (u128)i, i < 0));
}
f128_t __floattitf(i128 i) {
  return q_float(from_int(i < 0 ? -(u128)i : (u128)i, i < 0));
}
f128_t __floatunsitf(uint32_t u) { return q_float(from_int(u, 0)); }
f128_t __floatunditf(uint64_t u) { return q_float(from_int(u, 0)); }
f128_t __floatuntitf(u128 u) { return q_float(from_int(u, 0)); }

int32_t __fixtfsi(f128_t a) { return (int32_t)fix(q_bits(a), 32, 1); }
int64_t __fixtfdi(f128_t a) { return (int64_t)fix(q_bits(a), 64, 1); }
i128 __fixtfti(f128_t a) { return (i128)fix(q_bits(a), 128, 1); }
uint32_t __fixunstfsi(f128_t a) { return (uint32_t)fix(q_bits(a), 32, 0); }
uint64_t __fixunstfdi(f128_t a) { return (uint64_t)fix(q_bits(a), 64, 0); }
u128 __fixunstfti(f128_t a) { return fix(q_bits(a), 128, 0); }

/* __powitf2 is __builtin_powil: square-and-multiply over |b|, then one
 * division for negative b (compiler-rt's algorithm, so results match
 * other toolchains bit for bit; it is not correctly rounded). */
f128_t __powitf2(f128_t a, int b) {
  u128 x = q_bits(a), r = Q_ONE;
  uint32_t n = b < 0 ? -(uint32_t)b : (uint32_t)b;
  for (;;) {
    if (n & 1)
      r = q_mul(r, x);
    n >>= 1;
    if (n == 0)
      break;
    x = q_mul(x, x);
  }
  return q_float(b < 0 ? q_div(Q_ONE, r) : r);
}

/* ---- complex multiplication and division (C11 Annex G.5.1) ------------ */

static inline int q_isinf(u128 x) { return (x & ~Q_SIGN) == Q_INF; }
static inline int q_isfinite(u128 x) { return (x & ~Q_SIGN) < Q_INF; }

/* copysign of 1 (when cond) or 0 to the sign of x: the "boxing" step. */
static inline u128 box(int cond, u128 x) {
  return (x & Q_SIGN) | (cond ? Q_ONE : 0);
}

/* zero_nan replaces a NaN by a zero of the same sign. */
static inline u128 zero_nan(u128 x) { return q_isnan(x) ? x & Q_SIGN : x; }

/* scalbn multiplies a by 2^n with one rounding. */
static u128 q_scalbn(u128 a, int n) {
  struct unp u = unpack(a, Q_MBITS, Q_EBITS);
  if (u.cls != K_FINITE)
    return a;
  if (n > 40000) /* keep the exponent arithmetic in range */
    n = 40000;
  if (n < -40000)
    n = -40000;
  return round_pack(u.sign, u.exp + n, u.sig, Q_MBITS, Q_EBITS);
}

typedef union {
  c128_t z;
  f128_t p[2];
} c128_pun;

static c128_t cplx(u128 re, u128 im) {
  c128_pun c;
  c.p[0] = q_float(re);
  c.p[1] = q_float(im);
  return c.z;
}

c128_t __multc3(f128_t fa, f128_t fb, f128_t fc, f128_t fd) {
  u128 a = q_bits(fa), b = q_bits(fb), c = q_bits(fc), d = q_bits(fd);
  u128 ac = q_mul(a, c), bd = q_mul(b, d), ad = q_mul(a, d), bc = q_mul(b, c);
  u128 x = q_sub(ac, bd), y = q_add(ad, bc);
  if (q_isnan(x) && q_isnan(y)) {
    /* Recover infinities that came out as NaN + iNaN. */
    int recalc = 0;
    if (q_isinf(a) || q_isinf(b)) {
      a = box(q_isinf(a), a);
      b = box(q_isinf(b), b);
      c = zero_nan(c);
      d = zero_nan(d);
      recalc = 1;
    }
    if (q_isinf(c) || q_isinf(d)) {
      c = box(q_isinf(c), c);
      d = box(q_isinf(d), d);
      a = zero_nan(a);
      b = zero_nan(b);
      recalc = 1;
    }
    if (!recalc &&
        (q_isinf(ac) || q_isinf(bd) || q_isinf(ad) || q_isinf(bc))) {
      a = zero_nan(a);
      b = zero_nan(b);
      c = zero_nan(c);
      d = zero_nan(d);
      recalc = 1;
    }
    if (recalc) {
      x = q_mul(Q_INF, q_sub(q_mul(a, c), q_mul(b, d)));
      y = q_mul(Q_INF, q_add(q_mul(a, d), q_mul(b, c)));
    }
  }
  return cplx(x, y);
}

c128_t __divtc3(f128_t fa, f128_t fb, f128_t fc, f128_t fd) {
  u128 a = q_bits(fa), b = q_bits(fb), c = q_bits(fc), d = q_bits(fd);
  /* logb(fmax(|c|, |d|)), kept as its class plus an int when finite. */
  u128 mc = c & ~Q_SIGN, md = d & ~Q_SIGN, m;
  if (q_isnan(mc))
    m = md;
  else if (q_isnan(md))
    m = mc;
  else
    m = mc > md ? mc : md;
  int ilogbw = 0, winf = q_isinf(m);
  if (!q_isnan(m) && m != 0 && !winf) {
    struct unp u = unpack(m, Q_MBITS, Q_EBITS);
    ilogbw = u.exp + 127 - clz128(u.sig);
    c = q_scalbn(c, -ilogbw);
    d = q_scalbn(d, -ilogbw);
  }
  u128 denom = q_add(q_mul(c, c), q_mul(d, d));
  u128 x = q_scalbn(q_div(q_add(q_mul(a, c), q_mul(b, d)), denom), -ilogbw);
  u128 y = q_scalbn(q_div(q_sub(q_mul(b, c), q_mul(a, d)), denom), -ilogbw);
  if (q_isnan(x) && q_isnan(y)) {
    /* Recover infinities and zeros that came out as NaN + iNaN. */
    if ((denom & ~Q_SIGN) == 0 && (!q_isnan(a) || !q_isnan(b))) {
      u128 inf = (c & Q_SIGN) | Q_INF;
      x = q_mul(inf, a);
      y = q_mul(inf, b);
    } else if ((q_isinf(a) || q_isinf(b)) && q_isfinite(c) && q_isfinite(d)) {
      a = box(q_isinf(a), a);
      b = box(q_isinf(b), b);
      x = q_mul(Q_INF, q_add(q_mul(a, c), q_mul(b, d)));
      y = q_mul(Q_INF, q_sub(q_mul(b, c), q_mul(a, d)));
    } else if (winf && q_isfinite(a) && q_isfinite(b)) {
      c = box(q_isinf(c), c);
      d = box(q_isinf(d), d);
      x = q_mul(0, q_add(q_mul(a, c), q_mul(b, d)));
      y = q_mul(0, q_sub(q_mul(b, c), q_mul(a, d)));
    }
  }
  return cplx(x, y);
}
