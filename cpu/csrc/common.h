// Shared helpers of the CPU executor's kernels: 128-bit SIMD (four f32
// lanes), exp, the dropout hash, and the export macro. Every kernel takes
// the range [lo, hi) of its outermost independent index first, so the host
// can split it over threads; each element's arithmetic never depends on how
// the range was split, so results are the same bits for any thread count.
// Pointers are byte addresses in the one shared linear memory.
#pragma once
#include <wasm_simd128.h>

typedef v128_t f4;
typedef unsigned int u32;

#define EXPORT(name) __attribute__((export_name(#name))) void name

// Math.log of the host (exactly rounded enough, and deterministic).
__attribute__((import_module("env"), import_name("log"))) double host_log(double);

static inline f4 splat(float x) { return wasm_f32x4_splat(x); }
static inline f4 load(const float* p) { return wasm_v128_load(p); }
static inline void store(float* p, f4 v) { wasm_v128_store(p, v); }
static inline f4 add(f4 a, f4 b) { return wasm_f32x4_add(a, b); }
static inline f4 sub(f4 a, f4 b) { return wasm_f32x4_sub(a, b); }
static inline f4 mul(f4 a, f4 b) { return wasm_f32x4_mul(a, b); }
static inline f4 dv(f4 a, f4 b) { return wasm_f32x4_div(a, b); }
static inline f4 vmax(f4 a, f4 b) { return wasm_f32x4_pmax(a, b); }
static inline f4 vmin(f4 a, f4 b) { return wasm_f32x4_pmin(a, b); }
static inline float lane(f4 v, int i) {
  switch (i) {
    case 0: return wasm_f32x4_extract_lane(v, 0);
    case 1: return wasm_f32x4_extract_lane(v, 1);
    case 2: return wasm_f32x4_extract_lane(v, 2);
    default: return wasm_f32x4_extract_lane(v, 3);
  }
}
// Lane sums in a fixed order: (l0 + l1) + (l2 + l3).
static inline float hsum(f4 v) {
  return (lane(v, 0) + lane(v, 1)) + (lane(v, 2) + lane(v, 3));
}
static inline float hmax(f4 v) {
  float a = lane(v, 0) > lane(v, 1) ? lane(v, 0) : lane(v, 1);
  float b = lane(v, 2) > lane(v, 3) ? lane(v, 2) : lane(v, 3);
  return a > b ? a : b;
}

static inline float ftz1(float x) {
  return (x < 0.0f ? -x : x) >= 1.17549435e-38f ? x : 0.0f;
}

// The constants of exp and the activations, loaded once per kernel call
// (math_constants()) and passed by pointer. V8 builds every v128.const at
// each place it is used (several instructions) and clang rematerializes
// constants inside loops, so a loop of exp4 with literal constants spent most
// of its time building them; read from this table (weak, so clang cannot fold
// its values) at a kernel's entry they stay in registers or locals, with the
// same bits (cpu/README.md; deno task bench:cpu-kernels).
__attribute__((weak)) float d3pm_math_table[] = {
    -87.3f, 88.7f, 1.44269504088896341f, 12582912.0f, 0.693359375f, -2.12194440e-4f,
    1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
    1.6666665459e-1f, 5.0000001201e-1f, 1.0f, 30.0f,
    // −2√(2/π), −2√(2/π)·0.044715, −6√(2/π)·0.044715 (rounded once, from double)
    (float)(-2.0 * 0.7978845608028654), (float)(-2.0 * 0.7978845608028654 * 0.044715),
    (float)(-6.0 * 0.7978845608028654 * 0.044715), 0.0f, -30.0f, 1.17549435e-38f};
typedef struct {
  f4 lo, hi, log2e, magic, ln2_hi, ln2_lo, p0, p1, p2, p3, p4, p5, one, clamp, gelu_g1, gelu_g3,
      gelu_3g3, zero, nclamp, tiny;
} Math;
static inline Math math_constants(void) {
  const float* t = d3pm_math_table;
  Math k = {splat(t[0]),  splat(t[1]),  splat(t[2]),  splat(t[3]),  splat(t[4]),
            splat(t[5]),  splat(t[6]),  splat(t[7]),  splat(t[8]),  splat(t[9]),
            splat(t[10]), splat(t[11]), splat(t[12]), splat(t[13]), splat(t[14]),
            splat(t[15]), splat(t[16]), splat(t[17]), splat(t[18]), splat(t[19])};
  return k;
}

// Flush to zero: |x| below the smallest normal float (1.1754944e−38) → 0.
// Subnormal operands make the products that read them (P·V, dS·K, the
// head's dlogitsᵀ·lnf) many times slower on x86.
static inline f4 ftz4(const Math* K, f4 x) {
  return wasm_v128_and(x, wasm_f32x4_ge(wasm_f32x4_abs(x), K->tiny));
}
// exp(x), Cephes' expf: x = k·ln2 + r with |r| ≤ ln2/2 (ln2 split in two so
// k·C1 is exact), a degree-6 polynomial for e^r, 2^k from the exponent bits.
// k = round(x·log2 e) by adding and subtracting 1.5·2²³ (round to nearest
// even, as f32x4.nearest; its low bits are k, so no float-to-int
// conversion). Inputs are clamped to [−87.3, 88.7], so no infinity or
// subnormal appears: exp of an input at or below −87.3 is 0. Products of
// tiny values are subnormal, which x86 handles many times slower
// (WebAssembly has no flush-to-zero mode): the softmax kernels flush their
// outputs with ftz4.
// exp4 of an x already in [−87.3, 88.7] (the GELU's clamped z): the same
// bits, without the clamp and the zeroing below it.
static inline f4 exp4_in_range(const Math* K, f4 x) {
  f4 km = add(mul(x, K->log2e), K->magic);
  f4 k = sub(km, K->magic);
  f4 r = sub(x, mul(k, K->ln2_hi));
  r = sub(r, mul(k, K->ln2_lo));
  f4 p = K->p0;
  p = add(mul(p, r), K->p1);
  p = add(mul(p, r), K->p2);
  p = add(mul(p, r), K->p3);
  p = add(mul(p, r), K->p4);
  p = add(mul(p, r), K->p5);
  f4 y = add(add(mul(mul(p, r), r), r), K->one);
  // 2^k: (k + 127) << 23, the bits of 1.0f being 127 << 23.
  v128_t e = wasm_i32x4_add(wasm_i32x4_shl(km, 23), K->one);
  return mul(y, e);
}
static inline f4 exp4(const Math* K, f4 x) {
  x = vmin(vmax(x, K->lo), K->hi);
  // Below the clamp: 0, so a far key's probability is 0, not ~1e−38 (whose
  // products would be subnormal).
  return wasm_v128_and(exp4_in_range(K, x), wasm_f32x4_gt(x, K->lo));
}
// exp4 of an x ≤ 0 (a softmax's x − max): the same bits, without the upper
// clamp.
static inline f4 exp4_nonpos(const Math* K, f4 x) {
  x = vmax(x, K->lo);
  return wasm_v128_and(exp4_in_range(K, x), wasm_f32x4_gt(x, K->lo));
}
// The same function on one value (the same bits as a lane of exp4).
static inline float exp1(const Math* K, float x) { return lane(exp4(K, splat(x)), 0); }

// GELU, tanh approximation (GPT-2's gelu_new): ½x(1 + tanh u) with
// u = √(2/π)(x + 0.044715x³), written as x·σ(2u) = x/(1 + e^z), z = −2u =
// x(g1 + g3·x²), z clamped to [−30, 30] (|u| ≤ 15, as the WGSL kernels'
// tanh clamp): one exp and one divide, no tanh.
static inline f4 gelu_z(const Math* K, f4 x, f4 x2) {
  f4 z = mul(x, add(K->gelu_g1, mul(K->gelu_g3, x2)));
  return vmin(vmax(z, K->nclamp), K->clamp);
}
static inline f4 gelu4(const Math* K, f4 x) {
  f4 e = exp4_in_range(K, gelu_z(K, x, mul(x, x)));
  return dv(x, add(K->one, e));
}
// d/dx x·s with s = 1/(1 + e^z): s − x·s(1 − s)·dz/dx, dz/dx = g1 + 3g3·x²,
// with 1 − s = e^z·s (no cancellation as s → 1).
static inline f4 gelu_grad4(const Math* K, f4 x) {
  f4 x2 = mul(x, x);
  f4 e = exp4_in_range(K, gelu_z(K, x, x2));
  f4 s = dv(K->one, add(K->one, e));
  f4 dz = add(K->gelu_g1, mul(K->gelu_3g3, x2));
  return sub(s, mul(mul(mul(x, s), mul(e, s)), dz));
}
static inline f4 sigmoid4(const Math* K, f4 x) {
  return dv(K->one, add(K->one, exp4(K, sub(K->zero, x))));
}
static inline f4 silu4(const Math* K, f4 x) { return mul(x, sigmoid4(K, x)); }
static inline f4 silu_grad4(const Math* K, f4 x) {
  f4 s = sigmoid4(K, x);
  return add(s, mul(mul(x, s), sub(K->one, s)));
}

// Dropout masks from a counter-based hash (lowbias32), exactly the WebGPU
// engine's: keep(site, i) is 0 with probability rate, else 1/(1 − rate).
// A site is the arena offset of the tensor the mask belongs to, i the
// element's index in it; the seed changes every step.
// The hash's constants, lane offsets 0..3, 2^−24: read once per kernel call
// (weak: not folded, see d3pm_math_table) into a Drop's vectors.
__attribute__((weak)) u32 d3pm_hash_table[8] = {0x7feb352du, 0x846ca68bu, 0x9e3779b9u, 0u,
                                                1u,          2u,          3u,          0x33800000u};
typedef struct {
  u32 seed;
  u32 site;
  float rate;
  // keep4's operands: the site's head hash, the constants, rate and the kept
  // value 1/(1 − rate), as vectors.
  v128_t head, m1, m2, golden, lanes;
  f4 inv24, ratev, keepv;
} Drop;

static inline u32 hash_u32(u32 x) {
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return x;
}
static inline Drop drop_of(u32 seed, u32 site, float rate) {
  const u32* t = d3pm_hash_table;
  Drop d = {seed,
            site,
            rate,
            wasm_i32x4_splat((int)hash_u32(seed ^ hash_u32(site))),
            wasm_i32x4_splat((int)t[0]),
            wasm_i32x4_splat((int)t[1]),
            wasm_i32x4_splat((int)t[2]),
            wasm_v128_load(t + 3),
            wasm_f32x4_splat(__builtin_bit_cast(float, t[7])),
            splat(rate),
            splat(1.0f / (1.0f - rate))};
  return d;
}
static inline v128_t hash4(const Drop* d, v128_t x) {
  x = wasm_v128_xor(x, wasm_u32x4_shr(x, 16));
  x = wasm_i32x4_mul(x, d->m1);
  x = wasm_v128_xor(x, wasm_u32x4_shr(x, 15));
  x = wasm_i32x4_mul(x, d->m2);
  return wasm_v128_xor(x, wasm_u32x4_shr(x, 16));
}
// The keep factors of elements i .. i + 3 of a site.
static inline f4 keep4(const Drop* d, u32 i) {
  v128_t idx = wasm_i32x4_add(wasm_i32x4_splat((int)i), d->lanes);
  v128_t h = hash4(d, wasm_v128_xor(d->head, hash4(d, wasm_v128_xor(idx, d->golden))));
  f4 u = mul(wasm_f32x4_convert_i32x4(wasm_u32x4_shr(h, 8)), d->inv24);
  v128_t dropped = wasm_f32x4_lt(u, d->ratev);
  return wasm_v128_andnot(d->keepv, dropped);
}
static inline float keep1(Drop d, u32 i) {
  u32 h = hash_u32(hash_u32(d.seed ^ hash_u32(d.site)) ^ hash_u32(i ^ 0x9e3779b9u));
  if ((float)(h >> 8) * (1.0f / 16777216.0f) < d.rate) return 0.0f;
  return 1.0f / (1.0f - d.rate);
}
