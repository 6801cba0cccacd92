// adaLN backward (time conditioning): the gate of a residual branch and the
// modulation of a LayerNorm output, as the WGSL kernels. The outer index is
// (batch row b, channel c) flattened to b·d + c; each sums over T in order.
#include "common.h"

// out = res + br·(1 + g_b): dg_b[c] = Σ_t dout·br, dbr = dout·(1 + g_b)
// (times keep(site, o) when rate > 0: br is stored already dropped). g and
// dg rows of batch b at b·stride.
EXPORT(gate_backward)(u32 lo, u32 hi, u32 d, u32 T, const float* dout, const float* br,
                      const float* g, u32 stride, float* dbr, float* dg, u32 seed,
                      u32 site, float rate) {
  Drop dr = drop_of(seed, site, rate);
  u32 i = lo;
  while (i < hi) {
    u32 b = i / d, c0 = i % d, c1 = (b + 1) * d < hi ? d : hi - b * d;
    u32 c = c0;
    for (; c + 4 <= c1; c += 4) {
      f4 G = add(splat(1.0f), load(g + b * stride + c)), s = splat(0.0f);
      for (u32 t = 0; t < T; t++) {
        u32 o = (b * T + t) * d + c;
        f4 x = load(dout + o);
        s = add(s, mul(x, load(br + o)));
        f4 v = mul(x, G);
        if (rate > 0.0f) v = mul(v, keep4(&dr, o));
        store(dbr + o, v);
      }
      store(dg + b * stride + c, s);
    }
    for (; c < c1; c++) {
      float G = 1.0f + g[b * stride + c], s = 0.0f;
      for (u32 t = 0; t < T; t++) {
        u32 o = (b * T + t) * d + c;
        s += dout[o] * br[o];
        float v = dout[o] * G;
        dbr[o] = rate > 0.0f ? v * keep1(dr, o) : v;
      }
      dg[b * stride + c] = s;
    }
    i = b * d + c1;
  }
}

// h = ĥ·(1 + scale_b) + shift_b with ĥ = (x − mean)·rstd·w + bias (the
// LayerNorm output, recomputed): dshift = Σ_t dh, dscale = Σ_t dh·ĥ, and dh
// becomes dĥ = dh·(1 + scale_b) in place. The modulation rows of batch b
// at mods + b·stride (shift, then scale d further); the gradients likewise
// at dmods.
EXPORT(modulate_backward)(u32 lo, u32 hi, u32 d, u32 T, float* dh, const float* x,
                          const float* mean, const float* rstd, const float* w,
                          const float* bias, const float* mods, u32 stride,
                          float* dmods) {
  u32 i = lo;
  while (i < hi) {
    u32 b = i / d, c0 = i % d, c1 = (b + 1) * d < hi ? d : hi - b * d;
    u32 c = c0;
    for (; c + 4 <= c1; c += 4) {
      f4 s1 = add(splat(1.0f), load(mods + b * stride + d + c));
      f4 wc = load(w + c), bc = load(bias + c);
      f4 ds = splat(0.0f), dc = splat(0.0f);
      for (u32 t = 0; t < T; t++) {
        u32 row = b * T + t, o = row * d + c;
        f4 g = load(dh + o);
        f4 xh = add(mul(mul(sub(load(x + o), splat(mean[row])), splat(rstd[row])), wc), bc);
        ds = add(ds, g);
        dc = add(dc, mul(g, xh));
        store(dh + o, mul(g, s1));
      }
      store(dmods + b * stride + c, ds);
      store(dmods + b * stride + d + c, dc);
    }
    for (; c < c1; c++) {
      float s1 = 1.0f + mods[b * stride + d + c], ds = 0.0f, dc = 0.0f;
      for (u32 t = 0; t < T; t++) {
        u32 row = b * T + t, o = row * d + c;
        float g = dh[o];
        float xh = (x[o] - mean[row]) * rstd[row] * w[c] + bias[c];
        ds += g;
        dc += g * xh;
        dh[o] = g * s1;
      }
      dmods[b * stride + c] = ds;
      dmods[b * stride + d + c] = dc;
    }
    i = b * d + c1;
  }
}
