// LayerNorm forward and backward (with adaLN modulation), the bias and
// LayerNorm parameter gradients (column sums), as the WGSL kernels.
#include "common.h"

// Rows [lo, hi) of x (rows, d) → y, mean, rstd: y = (x − mean)·rstd·w + b,
// rstd = 1/√(var + 1e−5). With mod ≠ 0 the output is modulated (adaLN):
// y·(1 + scale) + shift, the shift of row r's batch at mod + (r / length)·stride
// and its scale d further.
EXPORT(layernorm_forward)(u32 lo, u32 hi, u32 d, float* x, float* y, const float* w,
                          const float* b, float* mean, float* rstd, float* mod,
                          u32 stride, u32 length) {
  u32 d4 = d & ~3u;
  for (u32 r = lo; r < hi; r++) {
    const float* xr = x + r * d;
    float* yr = y + r * d;
    f4 s = splat(0.0f);
    u32 c = 0;
    for (; c < d4; c += 4) s = add(s, load(xr + c));
    float sum = hsum(s);
    for (; c < d; c++) sum += xr[c];
    float m = sum / (float)d;
    f4 mv = splat(m), q = splat(0.0f);
    for (c = 0; c < d4; c += 4) {
      f4 z = sub(load(xr + c), mv);
      q = add(q, mul(z, z));
    }
    float sq = hsum(q);
    for (; c < d; c++) sq += (xr[c] - m) * (xr[c] - m);
    float rs = 1.0f / __builtin_sqrtf(sq / (float)d + 1e-5f);
    f4 rv = splat(rs);
    if (mod) {
      const float* sh = mod + (r / length) * stride;
      const float* sc = sh + d;
      for (c = 0; c < d4; c += 4) {
        f4 v = add(mul(mul(sub(load(xr + c), mv), rv), load(w + c)), load(b + c));
        store(yr + c, add(mul(v, add(splat(1.0f), load(sc + c))), load(sh + c)));
      }
      for (; c < d; c++) {
        float v = (xr[c] - m) * rs * w[c] + b[c];
        yr[c] = v * (1.0f + sc[c]) + sh[c];
      }
    } else {
      for (c = 0; c < d4; c += 4) {
        store(yr + c, add(mul(mul(sub(load(xr + c), mv), rv), load(w + c)), load(b + c)));
      }
      for (; c < d; c++) yr[c] = (xr[c] - m) * rs * w[c] + b[c];
    }
    mean[r] = m;
    rstd[r] = rs;
  }
}

// Rows [lo, hi): dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·w, x̂ the
// normalised input; written, or added to dx when add = 1 (the residual
// stream's gradient).
EXPORT(layernorm_backward)(u32 lo, u32 hi, u32 d, const float* dy, const float* x,
                           const float* mean, const float* rstd, const float* w,
                           float* dx, u32 accumulate) {
  u32 d4 = d & ~3u;
  for (u32 r = lo; r < hi; r++) {
    const float* dyr = dy + r * d;
    const float* xr = x + r * d;
    float* dxr = dx + r * d;
    float m = mean[r], rs = rstd[r];
    f4 mv = splat(m), rv = splat(rs), s1 = splat(0.0f), s2 = splat(0.0f);
    u32 c = 0;
    for (; c < d4; c += 4) {
      f4 g = mul(load(dyr + c), load(w + c));
      s1 = add(s1, g);
      s2 = add(s2, mul(g, mul(sub(load(xr + c), mv), rv)));
    }
    float a1 = hsum(s1), a2 = hsum(s2);
    for (; c < d; c++) {
      float g = dyr[c] * w[c];
      a1 += g;
      a2 += g * ((xr[c] - m) * rs);
    }
    float m1 = a1 / (float)d, m2 = a2 / (float)d;
    f4 m1v = splat(m1), m2v = splat(m2);
    for (c = 0; c < d4; c += 4) {
      f4 g = mul(load(dyr + c), load(w + c));
      f4 xh = mul(sub(load(xr + c), mv), rv);
      f4 v = mul(rv, sub(sub(g, m1v), mul(xh, m2v)));
      store(dxr + c, accumulate ? add(load(dxr + c), v) : v);
    }
    for (; c < d; c++) {
      float g = dyr[c] * w[c];
      float xh = (xr[c] - m) * rs;
      float v = rs * (g - m1 - xh * m2);
      dxr[c] = accumulate ? dxr[c] + v : v;
    }
  }
}

// Columns [lo, hi) of the LayerNorm gain and bias gradients, summed over
// rows in order: gw = Σ dy·x̂, gb = Σ dy (written). Strips of 8 columns are
// summed in registers over all rows (the arrays gw and gb may alias dy as
// far as the compiler knows, so a row-by-row update would load and store
// them every row); the same additions in the same order, so the same bits.
EXPORT(layernorm_params_backward)(u32 lo, u32 hi, u32 rows, u32 d, const float* dy,
                                  const float* x, const float* mean, const float* rstd,
                                  float* gw, float* gb) {
  u32 c = lo;
  for (; c + 8 <= hi; c += 8) {
    f4 w0 = splat(0.0f), w1 = w0, b0 = w0, b1 = w0;
    for (u32 r = 0; r < rows; r++) {
      const float* dyr = dy + r * d + c;
      const float* xr = x + r * d + c;
      f4 mv = splat(mean[r]), rv = splat(rstd[r]);
      f4 g0 = load(dyr), g1 = load(dyr + 4);
      w0 = add(w0, mul(g0, mul(sub(load(xr), mv), rv)));
      w1 = add(w1, mul(g1, mul(sub(load(xr + 4), mv), rv)));
      b0 = add(b0, g0);
      b1 = add(b1, g1);
    }
    store(gw + c, w0);
    store(gw + c + 4, w1);
    store(gb + c, b0);
    store(gb + c + 4, b1);
  }
  for (; c < hi; c++) {
    float w = 0.0f, b = 0.0f;
    for (u32 r = 0; r < rows; r++) {
      float g = dy[r * d + c];
      w += g * ((x[r * d + c] - mean[r]) * rstd[r]);
      b += g;
    }
    gw[c] = w;
    gb[c] = b;
  }
}

// Columns [lo, hi) of out = Σ_rows x (x row stride ld), in row order: the
// bias gradients (written). Strips of 16 columns are summed in registers
// over all rows (as layernorm_params_backward: the same bits).
EXPORT(column_sum)(u32 lo, u32 hi, u32 rows, u32 ld, const float* x, float* out) {
  u32 c = lo;
  for (; c + 16 <= hi; c += 16) {
    f4 s0 = splat(0.0f), s1 = s0, s2 = s0, s3 = s0;
    for (u32 r = 0; r < rows; r++) {
      const float* xr = x + r * ld + c;
      s0 = add(s0, load(xr));
      s1 = add(s1, load(xr + 4));
      s2 = add(s2, load(xr + 8));
      s3 = add(s3, load(xr + 12));
    }
    store(out + c, s0);
    store(out + c + 4, s1);
    store(out + c + 8, s2);
    store(out + c + 12, s3);
  }
  for (; c + 4 <= hi; c += 4) {
    f4 s0 = splat(0.0f);
    for (u32 r = 0; r < rows; r++) s0 = add(s0, load(x + r * ld + c));
    store(out + c, s0);
  }
  for (; c < hi; c++) {
    float s = 0.0f;
    for (u32 r = 0; r < rows; r++) s += x[r * ld + c];
    out[c] = s;
  }
}
