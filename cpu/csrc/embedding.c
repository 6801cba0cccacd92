// Token (+ learned position) embedding and its gradients, as the WGSL
// kernels: the tied wte's gradient is a deterministic scatter-add over the
// batch's distinct tokens (the host's CSR index), so no two threads touch
// one row and every row sums its positions in order.
#include "common.h"

// Rows [lo, hi) of x (N, d) = wte[tok[n]] + wpe[n mod T] (wpe = 0: none),
// times keep(site, n·d + c) when rate > 0.
EXPORT(embed_forward)(u32 lo, u32 hi, u32 d, u32 T, const int* tokens, const float* wte,
                      const float* wpe, float* x, u32 seed, u32 site, float rate) {
  Drop dr = drop_of(seed, site, rate);
  u32 d4 = d & ~3u;
  for (u32 n = lo; n < hi; n++) {
    const float* er = wte + (u32)tokens[n] * d;
    const float* pr = wpe ? wpe + (n % T) * d : 0;
    float* xr = x + n * d;
    u32 c = 0;
    for (; c < d4; c += 4) {
      f4 v = load(er + c);
      if (pr) v = add(v, load(pr + c));
      if (rate > 0.0f) v = mul(v, keep4(&dr, n * d + c));
      store(xr + c, v);
    }
    for (; c < d; c++) {
      float v = er[c];
      if (pr) v += pr[c];
      if (rate > 0.0f) v *= keep1(dr, n * d + c);
      xr[c] = v;
    }
  }
}

// Distinct tokens [lo, hi) of the index: gwte[uniq[k]] += Σ_q dx[positions[q]]
// (times the forward's mask) over q in [starts[k], starts[k + 1]), summed
// in order before the add. Sixteen channels at a time stay in registers.
EXPORT(embed_backward_wte)(u32 lo, u32 hi, u32 d, const float* dx, const int* uniq,
                           const int* starts, const int* positions, float* gwte,
                           u32 seed, u32 site, float rate) {
  Drop dr = drop_of(seed, site, rate);
  for (u32 k = lo; k < hi; k++) {
    float* g = gwte + (u32)uniq[k] * d;
    u32 q0 = (u32)starts[k], q1 = (u32)starts[k + 1];
    u32 c = 0;
    for (; c + 16 <= d; c += 16) {
      f4 s0 = splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
      for (u32 q = q0; q < q1; q++) {
        u32 o = (u32)positions[q] * d + c;
        f4 a0 = load(dx + o), a1 = load(dx + o + 4), a2 = load(dx + o + 8),
           a3 = load(dx + o + 12);
        if (rate > 0.0f) {
          a0 = mul(a0, keep4(&dr, o));
          a1 = mul(a1, keep4(&dr, o + 4));
          a2 = mul(a2, keep4(&dr, o + 8));
          a3 = mul(a3, keep4(&dr, o + 12));
        }
        s0 = add(s0, a0);
        s1 = add(s1, a1);
        s2 = add(s2, a2);
        s3 = add(s3, a3);
      }
      store(g + c, add(load(g + c), s0));
      store(g + c + 4, add(load(g + c + 4), s1));
      store(g + c + 8, add(load(g + c + 8), s2));
      store(g + c + 12, add(load(g + c + 12), s3));
    }
    for (; c < d; c++) {
      float s = 0.0f;
      for (u32 q = q0; q < q1; q++) {
        u32 o = (u32)positions[q] * d + c;
        s += rate > 0.0f ? dx[o] * keep1(dr, o) : dx[o];
      }
      g[c] += s;
    }
  }
}

// Positions [lo, hi) of the learned-position gradient (T, d):
// gwpe[t] = Σ_b dx[b, t] (times the mask), in batch order (written).
EXPORT(embed_backward_wpe)(u32 lo, u32 hi, u32 d, u32 T, u32 batch, const float* dx,
                           float* gwpe, u32 seed, u32 site, float rate) {
  Drop dr = drop_of(seed, site, rate);
  u32 d4 = d & ~3u;
  for (u32 t = lo; t < hi; t++) {
    float* g = gwpe + t * d;
    u32 c = 0;
    for (; c < d4; c += 4) {
      f4 s = splat(0.0f);
      for (u32 b = 0; b < batch; b++) {
        u32 o = (b * T + t) * d + c;
        f4 v = load(dx + o);
        if (rate > 0.0f) v = mul(v, keep4(&dr, o));
        s = add(s, v);
      }
      store(g + c, s);
    }
    for (; c < d; c++) {
      float s = 0.0f;
      for (u32 b = 0; b < batch; b++) {
        u32 o = (b * T + t) * d + c;
        s += rate > 0.0f ? dx[o] * keep1(dr, o) : dx[o];
      }
      g[c] = s;
    }
  }
}
