// The softmax halves of attention; the products Q·Kᵀ, P·V and their
// gradients go to cblas_sgemm on strided views of qkv. A row is one query
// r = (b·H + h)·T + p of the scores [B, H, T, T].
#include "common.h"

// ALiBi of head h (slope 0: none): −m·|j − p − centre| with m = slope·2^(−8h/H),
// centre 0, except with neighbours for heads 0 and 1: m = slope and centre
// −1, +1 (the tfjs Transformer's alibiValues).
typedef struct {
  float m;
  float centre;
} Alibi;

static inline Alibi alibi_of(const Math* K, float slope, u32 neighbours, u32 h, u32 H) {
  Alibi a = {0.0f, 0.0f};
  if (slope == 0.0f) return a;
  u32 nb = neighbours && h < 2;
  a.m = nb ? slope : slope * exp1(K, -8.0f * (float)h / (float)H * 0.6931471805599453f);
  a.centre = nb ? (h == 0 ? -1.0f : 1.0f) : 0.0f;
  return a;
}

// Rows [lo, hi): s holds the scaled scores q·kᵀ/√hd; adds ALiBi, masks
// j > p when causal, and overwrites the row with the probabilities
// P = softmax (0 where masked); lse = max + log Σ exp. With rate > 0 the
// dropped probabilities P·keep(site, r·T + j) go to pk as well.
EXPORT(attention_softmax_forward)(u32 lo, u32 hi, u32 T, u32 H, u32 causal, float* s,
                                  float* lse, float slope, u32 neighbours, float* pk,
                                  u32 seed, u32 site, float rate) {
  Drop dr = drop_of(seed, site, rate);
  Math K = math_constants();
  for (u32 r = lo; r < hi; r++) {
    u32 p = r % T, h = (r / T) % H;
    float* row = s + r * T;
    u32 end = causal ? p + 1 : T, end4 = end & ~3u;
    Alibi al = alibi_of(&K, slope, neighbours, h, H);
    if (al.m != 0.0f) {
      for (u32 j = 0; j < end; j++) {
        float dist = (float)j - (float)p - al.centre;
        row[j] += -al.m * (dist < 0.0f ? -dist : dist);
      }
    }
    // Two running maxima (max is exact: the same result as one).
    f4 mx4 = splat(-3.0e38f), mx5 = mx4;
    u32 j = 0;
    for (; j + 8 <= end4; j += 8) {
      mx4 = vmax(mx4, load(row + j));
      mx5 = vmax(mx5, load(row + j + 4));
    }
    for (; j < end4; j += 4) mx4 = vmax(mx4, load(row + j));
    float mx = hmax(vmax(mx4, mx5));
    for (; j < end; j++) mx = row[j] > mx ? row[j] : mx;
    f4 mv = splat(mx), den4 = splat(0.0f);
    for (j = 0; j < end4; j += 4) {
      f4 e = exp4_nonpos(&K, sub(load(row + j), mv));
      store(row + j, e);
      den4 = add(den4, e);
    }
    float den = hsum(den4);
    for (; j < end; j++) {
      float e = exp1(&K, row[j] - mx);
      row[j] = e;
      den += e;
    }
    float inv = 1.0f / den;
    f4 iv = splat(inv);
    for (j = 0; j < end4; j += 4) store(row + j, ftz4(&K, mul(load(row + j), iv)));
    for (; j < end; j++) row[j] = ftz1(row[j] * inv);
    for (j = end; j < T; j++) row[j] = 0.0f;
    lse[r] = mx + (float)host_log(den);
    if (rate > 0.0f) {
      float* kr = pk + r * T;
      for (j = 0; j + 4 <= T; j += 4) store(kr + j, mul(load(row + j), keep4(&dr, r * T + j)));
      for (; j < T; j++) kr[j] = row[j] * keep1(dr, r * T + j);
    }
  }
}

// Rows [lo, hi): ds holds dP = dY·Vᵀ for the row's query and is overwritten
// by dS = P·(dP·keep − D), D = dy·y of the query (written to D[r] when
// D ≠ 0); 0 where masked. With rate > 0 the dropped P·keep goes to pk (the
// operand of dV = (P·keep)ᵀ·dY). y and dy are (B, T, d), head h at h·hd.
EXPORT(attention_softmax_backward)(u32 lo, u32 hi, u32 T, u32 H, u32 hd, u32 causal,
                                   const float* P, float* ds, const float* y,
                                   const float* dy, float* D, float* pk, u32 seed,
                                   u32 site, float rate) {
  Drop dr = drop_of(seed, site, rate);
  Math K = math_constants();
  u32 d = H * hd;
  for (u32 r = lo; r < hi; r++) {
    u32 p = r % T, bh = r / T, b = bh / H, h = bh % H;
    const float* yr = y + (b * T + p) * d + h * hd;
    const float* gr = dy + (b * T + p) * d + h * hd;
    f4 acc = splat(0.0f);
    u32 c = 0;
    for (; c + 4 <= hd; c += 4) acc = add(acc, mul(load(gr + c), load(yr + c)));
    float dd = hsum(acc);
    for (; c < hd; c++) dd += gr[c] * yr[c];
    if (D) D[r] = dd;
    const float* pr = P + r * T;
    float* sr = ds + r * T;
    u32 end = causal ? p + 1 : T, end4 = end & ~3u, j = 0;
    f4 dv4 = splat(dd);
    if (rate > 0.0f) {
      float* kr = pk + r * T;
      for (; j < end4; j += 4) {
        f4 k = keep4(&dr, r * T + j), pj = load(pr + j);
        store(sr + j, ftz4(&K, mul(pj, sub(mul(load(sr + j), k), dv4))));
        store(kr + j, ftz4(&K, mul(pj, k)));
      }
      for (; j < end; j++) {
        float k = keep1(dr, r * T + j);
        sr[j] = ftz1(pr[j] * (sr[j] * k - dd));
        kr[j] = ftz1(pr[j] * k);
      }
      for (u32 q = end; q < T; q++) kr[q] = 0.0f;
    } else {
      for (; j < end4; j += 4) {
        store(sr + j, ftz4(&K, mul(load(pr + j), sub(load(sr + j), dv4))));
      }
      for (; j < end; j++) sr[j] = ftz1(pr[j] * (sr[j] - dd));
    }
    for (j = end; j < T; j++) sr[j] = 0.0f;
  }
}

// Rows [lo, hi) of qkv (N, 3d), in place on the q and k thirds: rotary
// positions ("rotate half": channel j pairs with j + hd/2), forward
// (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin), backward its transpose.
// Tables cos, sin (T, hd/2).
EXPORT(rope_rows)(u32 lo, u32 hi, u32 T, u32 H, u32 hd, float* qkv, const float* cos,
                  const float* sin, u32 backward) {
  u32 hh = hd / 2, d = H * hd, hh4 = hh & ~3u;
  f4 sign = splat(backward ? -1.0f : 1.0f);
  for (u32 n = lo; n < hi; n++) {
    const float* cr = cos + (n % T) * hh;
    const float* sr = sin + (n % T) * hh;
    for (u32 part = 0; part < 2; part++) {
      for (u32 h = 0; h < H; h++) {
        float* o = qkv + n * 3 * d + part * d + h * hd;
        u32 j = 0;
        for (; j < hh4; j += 4) {
          f4 c = load(cr + j), s = mul(load(sr + j), sign);
          f4 x1 = load(o + j), x2 = load(o + hh + j);
          store(o + j, sub(mul(x1, c), mul(x2, s)));
          store(o + hh + j, add(mul(x2, c), mul(x1, s)));
        }
        for (; j < hh; j++) {
          float c = cr[j], s = backward ? -sr[j] : sr[j];
          float x1 = o[j], x2 = o[hh + j];
          o[j] = x1 * c - x2 * s;
          o[hh + j] = x2 * c + x1 * s;
        }
      }
    }
  }
}
