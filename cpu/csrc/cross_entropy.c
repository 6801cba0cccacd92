// Softmax cross-entropy with per-token weights over one chunk of logits
// rows, as the WGSL kernel.
#include "common.h"

// Rows [lo, hi) of logits (rows, V): loss[r] = w·(lse − logit[target]) and
// the row is overwritten by its gradient w·(softmax − onehot). A target < 0
// or ≥ V, or a zero weight, gives 0 loss and 0 gradient; column `exclude`
// (the mask id, or 0xffffffff) is left out of the softmax (probability 0,
// gradient 0). targets, weights and loss are indexed by the chunk's row.
EXPORT(cross_entropy)(u32 lo, u32 hi, u32 V, float* logits, const int* targets,
                      const float* weights, float* loss, u32 exclude) {
  Math K = math_constants();
  u32 V4 = V & ~3u;
  for (u32 r = lo; r < hi; r++) {
    float* l = logits + r * V;
    int tgt = targets[r];
    float w = weights[r];
    if (!(tgt >= 0 && (u32)tgt < V && w != 0.0f)) {
      for (u32 v = 0; v < V; v++) l[v] = 0.0f;
      loss[r] = 0.0f;
      continue;
    }
    float tl = l[tgt];
    if (exclude < V) l[exclude] = -3.0e38f;
    // Four running maxima (max is exact, so the same result as one): one
    // would make this pass wait on pmax's latency every vector.
    f4 mx4 = splat(-3.0e38f), mx5 = mx4, mx6 = mx4, mx7 = mx4;
    u32 v = 0;
    for (; v + 16 <= V4; v += 16) {
      mx4 = vmax(mx4, load(l + v));
      mx5 = vmax(mx5, load(l + v + 4));
      mx6 = vmax(mx6, load(l + v + 8));
      mx7 = vmax(mx7, load(l + v + 12));
    }
    for (; v < V4; v += 4) mx4 = vmax(mx4, load(l + v));
    float mx = hmax(vmax(vmax(mx4, mx5), vmax(mx6, mx7)));
    for (; v < V; v++) mx = l[v] > mx ? l[v] : mx;
    f4 mv = splat(mx), s4 = splat(0.0f);
    for (v = 0; v < V4; v += 4) {
      f4 e = exp4_nonpos(&K, sub(load(l + v), mv));
      store(l + v, e);
      s4 = add(s4, e);
    }
    float s = hsum(s4);
    for (; v < V; v++) {
      float e = exp1(&K, l[v] - mx);
      l[v] = e;
      s += e;
    }
    float lse = mx + (float)host_log(s);
    float ws = w / s;
    f4 scale = splat(ws);
    for (v = 0; v < V4; v += 4) store(l + v, ftz4(&K, mul(load(l + v), scale)));
    for (; v < V; v++) l[v] = ftz1(l[v] * ws);
    l[tgt] -= w;
    if (exclude < V) l[exclude] = 0.0f;
    loss[r] = w * (lse - tl);
  }
}
