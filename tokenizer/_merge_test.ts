import { assertEquals } from "@std/assert";
import { randomFloats } from "@d3pm/core";
import { mergePiece } from "./_merge.ts";
import { PairMap } from "./_pair_map.ts";

// GPT-2's bpe(): find the lowest-ranked pair, merge every occurrence left to
// right, repeat.
function reference(ids: number[], merges: [number, number][]): number[] {
  const rank = new Map(merges.map(([a, b], r) => [`${a},${b}`, r]));
  let word = ids;
  while (word.length > 1) {
    let best = Infinity;
    for (let i = 0; i + 1 < word.length; i++) {
      best = Math.min(best, rank.get(`${word[i]},${word[i + 1]}`) ?? Infinity);
    }
    if (best === Infinity) break;
    const [a, b] = merges[best];
    const next: number[] = [];
    for (let i = 0; i < word.length; i++) {
      if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
        next.push(4 + best);
        i++;
      } else next.push(word[i]);
    }
    word = next;
  }
  return word;
}

Deno.test("mergePiece() equals GPT-2's merge loop on short and long pieces", () => {
  const rand = randomFloats(1);
  for (let trial = 0; trial < 40; trial++) {
    // Alphabet 0–3; merge r makes id 4 + r from any two earlier ids.
    const merges: [number, number][] = [];
    const ranks = new PairMap();
    const merged = new Int32Array(60);
    for (let r = 0; r < 60; r++) {
      const a = Math.floor(rand() * (4 + r));
      const b = Math.floor(rand() * (4 + r));
      if (ranks.get(a, b) >= 0) continue;
      ranks.set(a, b, merges.length);
      merged[merges.length] = 4 + merges.length;
      merges.push([a, b]);
    }
    for (const n of [0, 1, 2, 5, 30, 64, 65, 200, 3000]) {
      const ids = Array.from({ length: n }, () => Math.floor(rand() * 4));
      const buf = Int32Array.from(ids);
      const m = mergePiece(buf, n, ranks, merged);
      assertEquals([...buf.subarray(0, m)], reference(ids, merges), `n ${n}`);
    }
  }
});
