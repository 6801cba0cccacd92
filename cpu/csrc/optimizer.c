// Global-norm clipping's sum of squares, AdamW over every parameter in one
// pass, and the EMA of the parameters, as the WGSL kernels.
#include "common.h"

// Chunks [lo, hi) of g (n values, `chunk` per chunk): partial[c] = Σ g²
// over the chunk, in a fixed order (the chunking does not depend on the
// thread count, so neither does the norm).
EXPORT(sum_squares)(u32 lo, u32 hi, u32 n, u32 chunk, const float* g, float* partial) {
  for (u32 c = lo; c < hi; c++) {
    u32 i = c * chunk, end = i + chunk < n ? i + chunk : n;
    f4 a = splat(0.0f), b = a;
    for (; i + 8 <= end; i += 8) {
      f4 x = load(g + i), y = load(g + i + 4);
      a = add(a, mul(x, x));
      b = add(b, mul(y, y));
    }
    float s = hsum(add(a, b));
    for (; i < end; i++) s += g[i] * g[i];
    partial[c] = s;
  }
}

static void adamw_span(u32 lo, u32 hi, float* p, const float* g, float* m, float* v,
                       float b1, float b2, float eps, float wd, float lr, float c1,
                       float c2, float scale) {
  f4 B1 = splat(b1), B2 = splat(b2), OB1 = splat(1.0f - b1), OB2 = splat(1.0f - b2);
  f4 C1 = splat(c1), C2 = splat(c2), E = splat(eps), WD = splat(wd), LR = splat(lr);
  f4 S = splat(scale);
  u32 i = lo;
  for (; i + 4 <= hi; i += 4) {
    f4 gi = mul(load(g + i), S);
    f4 mi = add(mul(B1, load(m + i)), mul(OB1, gi));
    f4 vi = add(mul(B2, load(v + i)), mul(mul(OB2, gi), gi));
    store(m + i, mi);
    store(v + i, vi);
    f4 pi = load(p + i);
    f4 upd = dv(dv(mi, C1), add(wasm_f32x4_sqrt(dv(vi, C2)), E));
    if (wd != 0.0f) upd = add(upd, mul(WD, pi));
    store(p + i, sub(pi, mul(LR, upd)));
  }
  for (; i < hi; i++) {
    float gi = g[i] * scale;
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float upd = (mi / c1) / (__builtin_sqrtf(vi / c2) + eps);
    if (wd != 0.0f) upd += wd * p[i];
    p[i] = p[i] - lr * upd;
  }
}

// Elements [lo, hi): g = grad·scale (the clip factor),
// m ← β1 m + (1−β1) g, v ← β2 v + (1−β2) g²,
// p ← p − lr·((m/c1)/(√(v/c2) + eps) + wd·p), decay only below decayEnd (the
// parameter table puts decayed tensors first). c1, c2: bias corrections.
EXPORT(adamw)(u32 lo, u32 hi, u32 decay_end, float* p, const float* g, float* m,
              float* v, float b1, float b2, float eps, float wd, float lr, float c1,
              float c2, float scale) {
  u32 mid = decay_end < lo ? lo : decay_end > hi ? hi : decay_end;
  adamw_span(lo, mid, p, g, m, v, b1, b2, eps, wd, lr, c1, c2, scale);
  adamw_span(mid, hi, p, g, m, v, b1, b2, eps, 0.0f, lr, c1, c2, scale);
}

// Elements [lo, hi): e ← decay·e + (1 − decay)·p.
EXPORT(ema)(u32 lo, u32 hi, const float* p, float* e, float decay) {
  f4 k = splat(decay), k1 = splat(1.0f - decay);
  u32 i = lo;
  for (; i + 4 <= hi; i += 4) store(e + i, add(mul(k, load(e + i)), mul(k1, load(p + i))));
  for (; i < hi; i++) e[i] = decay * e[i] + (1.0f - decay) * p[i];
}
