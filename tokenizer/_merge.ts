// The BPE merge loop on one pre-tokenized piece: repeatedly merge the pair
// with the lowest rank (the leftmost of equals), as GPT-2's `bpe()` does.
// Short pieces use a flat array with a rank per adjacent pair; long ones
// (runs of spaces or symbols can be megabytes long) a linked list and a heap,
// so a piece of n bytes costs O(n log n) instead of O(n²).
import type { PairMap } from "./_pair_map.ts";

const NONE = 0x7fffffff;
const SHORT = 64;

const pairRank = new Int32Array(SHORT);

/**
 * Merges `ids[0, n)` in place and returns the new length.
 *
 * @param ids Token ids of the piece's bytes; overwritten with the result.
 * @param n Number of ids.
 * @param ranks Pair → merge rank.
 * @param merged Merge rank → id of the merged token.
 */
export function mergePiece(
  ids: Int32Array,
  n: number,
  ranks: PairMap,
  merged: Int32Array,
): number {
  if (n < 2) return n;
  if (n > SHORT) return mergeLong(ids, n, ranks, merged);
  const r = pairRank;
  for (let i = 0; i < n - 1; i++) {
    const k = ranks.get(ids[i], ids[i + 1]);
    r[i] = k < 0 ? NONE : k;
  }
  while (n > 1) {
    let best = NONE;
    let at = -1;
    for (let i = 0; i < n - 1; i++) {
      if (r[i] < best) {
        best = r[i];
        at = i;
      }
    }
    if (at < 0) break;
    ids[at] = merged[best];
    ids.copyWithin(at + 1, at + 2, n);
    r.copyWithin(at, at + 1, n - 1);
    n--;
    if (at > 0) {
      const k = ranks.get(ids[at - 1], ids[at]);
      r[at - 1] = k < 0 ? NONE : k;
    }
    if (at < n - 1) {
      const k = ranks.get(ids[at], ids[at + 1]);
      r[at] = k < 0 ? NONE : k;
    }
  }
  return n;
}

function mergeLong(
  ids: Int32Array,
  n: number,
  ranks: PairMap,
  merged: Int32Array,
): number {
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  // Min-heap of (rank, position), ties to the leftmost position.
  let hr = new Int32Array(n);
  let hp = new Int32Array(n);
  let size = 0;
  const lessIn = (i: number, j: number) =>
    hr[i] < hr[j] || (hr[i] === hr[j] && hp[i] < hp[j]);
  const swapIn = (i: number, j: number) => {
    const r = hr[i];
    hr[i] = hr[j];
    hr[j] = r;
    const p = hp[i];
    hp[i] = hp[j];
    hp[j] = p;
  };
  const push = (rank: number, pos: number) => {
    if (size === hr.length) {
      const r2 = new Int32Array(size * 2);
      r2.set(hr);
      const p2 = new Int32Array(size * 2);
      p2.set(hp);
      hr = r2;
      hp = p2;
    }
    hr[size] = rank;
    hp[size] = pos;
    let i = size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!lessIn(i, parent)) break;
      swapIn(i, parent);
      i = parent;
    }
  };
  const pop = () => {
    size--;
    hr[0] = hr[size];
    hp[0] = hp[size];
    let i = 0;
    while (true) {
      const a = 2 * i + 1;
      if (a >= size) break;
      const b = a + 1;
      const c = b < size && lessIn(b, a) ? b : a;
      if (!lessIn(c, i)) break;
      swapIn(c, i);
      i = c;
    }
  };
  for (let i = 0; i < n; i++) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  for (let i = 0; i < n - 1; i++) {
    const k = ranks.get(ids[i], ids[i + 1]);
    if (k >= 0) push(k, i);
  }
  while (size > 0) {
    const rank = hr[0];
    const p = hp[0];
    pop();
    if (ids[p] < 0) continue;
    const q = next[p];
    if (q < 0 || ranks.get(ids[p], ids[q]) !== rank) continue;
    ids[p] = merged[rank];
    ids[q] = -1;
    const after = next[q];
    next[p] = after;
    if (after >= 0) prev[after] = p;
    const before = prev[p];
    if (before >= 0) {
      const k = ranks.get(ids[before], ids[p]);
      if (k >= 0) push(k, before);
    }
    if (after >= 0) {
      const k = ranks.get(ids[p], ids[after]);
      if (k >= 0) push(k, p);
    }
  }
  let m = 0;
  for (let i = 0; i >= 0; i = next[i]) ids[m++] = ids[i];
  return m;
}
