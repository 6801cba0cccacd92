// Matmul epilogues (the product itself comes from cblas_sgemm with beta 0),
// activations and their gradients, and dropout's backward. Row kernels take
// rows [lo, hi) of n columns with row strides (ld) of their own.
#include "common.h"

// c += bias.
EXPORT(bias_rows)(u32 lo, u32 hi, u32 n, float* c, u32 ldc, const float* bias) {
  u32 n4 = n & ~3u;
  for (u32 m = lo; m < hi; m++) {
    float* cr = c + m * ldc;
    u32 j = 0;
    for (; j < n4; j += 4) store(cr + j, add(load(cr + j), load(bias + j)));
    for (; j < n; j++) cr[j] += bias[j];
  }
}

// A residual branch: c = (c + bias)·keep(site, m·n + j) + e (keep only when
// rate > 0).
EXPORT(residual_rows)(u32 lo, u32 hi, u32 n, float* c, u32 ldc, const float* bias,
                      const float* e, u32 lde, u32 seed, u32 site, float rate) {
  Drop dr = drop_of(seed, site, rate);
  u32 n4 = n & ~3u;
  for (u32 m = lo; m < hi; m++) {
    float* cr = c + m * ldc;
    const float* er = e + m * lde;
    u32 j = 0;
    if (rate > 0.0f) {
      for (; j < n4; j += 4) {
        f4 v = mul(add(load(cr + j), load(bias + j)), keep4(&dr, m * n + j));
        store(cr + j, add(v, load(er + j)));
      }
      for (; j < n; j++) cr[j] = (cr[j] + bias[j]) * keep1(dr, m * n + j) + er[j];
    } else {
      for (; j < n4; j += 4) store(cr + j, add(add(load(cr + j), load(bias + j)), load(er + j)));
      for (; j < n; j++) cr[j] = (cr[j] + bias[j]) + er[j];
    }
  }
}

// A gated residual branch (adaLN): the product is in aux (row stride ldc);
// br = (aux + bias)·keep is stored back in aux, and c = e + br·(1 + g) with
// g the gate of row m's batch at gate + (m / rows)·stride.
EXPORT(gate_rows)(u32 lo, u32 hi, u32 n, float* c, u32 ldc, const float* bias,
                  const float* e, u32 lde, float* aux, const float* gate, u32 stride,
                  u32 rows, u32 seed, u32 site, float rate) {
  Drop dr = drop_of(seed, site, rate);
  u32 n4 = n & ~3u;
  for (u32 m = lo; m < hi; m++) {
    float* cr = c + m * ldc;
    float* ar = aux + m * ldc;
    const float* er = e + m * lde;
    const float* g = gate + (m / rows) * stride;
    u32 j = 0;
    for (; j < n4; j += 4) {
      f4 br = add(load(ar + j), load(bias + j));
      if (rate > 0.0f) br = mul(br, keep4(&dr, m * n + j));
      store(ar + j, br);
      store(cr + j, add(load(er + j), mul(br, add(splat(1.0f), load(g + j)))));
    }
    for (; j < n; j++) {
      float br = ar[j] + bias[j];
      if (rate > 0.0f) br *= keep1(dr, m * n + j);
      ar[j] = br;
      cr[j] = er[j] + br * (1.0f + g[j]);
    }
  }
}

// Activation forward: e += bias (when bias ≠ 0), then c = act(e);
// act 0 = GELU (tanh), 1 = SiLU.
EXPORT(activation_rows)(u32 lo, u32 hi, u32 n, float* e, u32 lde, float* c, u32 ldc,
                        const float* bias, u32 act) {
  Math K = math_constants();
  u32 n4 = n & ~3u;
  for (u32 m = lo; m < hi; m++) {
    float* er = e + m * lde;
    float* cr = c + m * ldc;
    u32 j = 0;
    for (; j < n4; j += 4) {
      f4 pre = load(er + j);
      if (bias) {
        pre = add(pre, load(bias + j));
        store(er + j, pre);
      }
      store(cr + j, act ? silu4(&K, pre) : gelu4(&K, pre));
    }
    for (; j < n; j++) {
      float pre = er[j];
      if (bias) er[j] = pre = pre + bias[j];
      cr[j] = lane(act ? silu4(&K, splat(pre)) : gelu4(&K, splat(pre)), 0);
    }
  }
}

// Activation backward: c ← c·act'(e); act 0 = GELU (tanh), 1 = SiLU.
EXPORT(activation_backward_rows)(u32 lo, u32 hi, u32 n, float* c, u32 ldc,
                                 const float* e, u32 lde, u32 act) {
  Math K = math_constants();
  u32 n4 = n & ~3u;
  for (u32 m = lo; m < hi; m++) {
    float* cr = c + m * ldc;
    const float* er = e + m * lde;
    u32 j = 0;
    for (; j < n4; j += 4) {
      f4 x = load(er + j);
      store(cr + j, mul(load(cr + j), act ? silu_grad4(&K, x) : gelu_grad4(&K, x)));
    }
    for (; j < n; j++) {
      f4 x = splat(er[j]);
      cr[j] *= lane(act ? silu_grad4(&K, x) : gelu_grad4(&K, x), 0);
    }
  }
}

// Elements [lo, hi): dst = src·keep(site, i).
EXPORT(dropout_backward)(u32 lo, u32 hi, const float* src, float* dst, u32 seed,
                         u32 site, float rate) {
  Drop dr = drop_of(seed, site, rate);
  u32 i = lo;
  for (; i + 4 <= hi; i += 4) store(dst + i, mul(load(src + i), keep4(&dr, i)));
  for (; i < hi; i++) dst[i] = src[i] * keep1(dr, i);
}
