import { assertEquals, assertThrows } from "@std/assert";
import { randomFloats } from "@d3pm/core";
import { fuzzString } from "./_fuzz.ts";
import { GPT2_PATTERN } from "./_pretokenize.ts";
import { trainBpe } from "./train.ts";

// The textbook algorithm: recount every pair after every merge.
function referenceMerges(
  text: string,
  merges: number,
  minFrequency = 2,
): [number, number][] {
  const counts = new Map<string, number>();
  for (const [piece] of text.matchAll(GPT2_PATTERN)) {
    counts.set(piece, (counts.get(piece) ?? 0) + 1);
  }
  const words = [...counts].map(([p, f]) => ({
    ids: [...new TextEncoder().encode(p)],
    f,
  }));
  const out: [number, number][] = [];
  while (out.length < merges) {
    const pairs = new Map<string, number>();
    for (const { ids, f } of words) {
      for (let i = 0; i + 1 < ids.length; i++) {
        const key = `${ids[i]},${ids[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + f);
      }
    }
    let best: [number, number] | undefined;
    let bestCount = 0;
    for (const [key, c] of pairs) {
      const [a, b] = key.split(",").map(Number) as [number, number];
      if (
        c > bestCount ||
        (c === bestCount && best &&
          (a < best[0] || (a === best[0] && b < best[1])))
      ) {
        best = [a, b];
        bestCount = c;
      }
    }
    if (!best || bestCount < minFrequency) break;
    const id = 256 + out.length;
    out.push(best);
    for (const w of words) {
      const next: number[] = [];
      for (let i = 0; i < w.ids.length; i++) {
        if (
          i + 1 < w.ids.length && w.ids[i] === best[0] &&
          w.ids[i + 1] === best[1]
        ) {
          next.push(id);
          i++;
        } else next.push(w.ids[i]);
      }
      w.ids = next;
    }
  }
  return out;
}

const sample = (seed: number, length: number): string => {
  const rand = randomFloats(seed);
  const words = [
    "the",
    " cat",
    " sat",
    " on",
    " mat",
    " aaaa",
    " abab",
    "\n",
    " 12",
    "'s",
  ];
  let s = "";
  while (s.length < length) {
    s += rand() < 0.8
      ? words[Math.floor(rand() * words.length)]
      : fuzzString(rand, 5, false);
  }
  return s;
};

Deno.test("trainBpe() learns the same merges as the textbook recount-everything algorithm", () => {
  for (const seed of [1, 2, 3]) {
    const text = sample(seed, 6_000);
    const merges = trainBpe(text, { vocabSize: 256 + 150 + 4 }).vocabulary
      .merges
      .map(([a, b]) => [a, b]);
    assertEquals(merges, referenceMerges(text, 150));
  }
});

Deno.test("trainBpe() is deterministic and reads chunks as one text", () => {
  const text = sample(4, 20_000);
  const a = trainBpe(text, { vocabSize: 400 });
  const b = trainBpe(text, { vocabSize: 400 });
  const chunks: string[] = [];
  for (let i = 0; i < text.length; i += 37) chunks.push(text.slice(i, i + 37));
  const c = trainBpe(chunks, { vocabSize: 400 });
  assertEquals(a.id, b.id);
  assertEquals(c.id, a.id);
  assertEquals(a.vocabulary.merges, c.vocabulary.merges);
  assertEquals(a.vocabSize, 400);
  assertEquals(a.special, { bos: 396, eos: 397, pad: 398, mask: 399 });
});

Deno.test("trainBpe() tokens round-trip the training text and unseen text", () => {
  const text = sample(5, 20_000);
  const tok = trainBpe(text, { vocabSize: 500 });
  assertEquals(tok.decode(tok.encode(text)), text);
  const unseen = fuzzString(randomFloats(6), 2_000, false);
  assertEquals(tok.decode(tok.encode(unseen)), unseen);
  assertEquals(
    tok.encode(text).length < new TextEncoder().encode(text).length / 2,
    true,
  );
});

Deno.test("trainBpe() stops early when no pair occurs minFrequency times", () => {
  const tok = trainBpe("ab ab", { vocabSize: 1000 });
  // "ab" (2), " ab" (1 < 2): one merge.
  assertEquals(tok.vocabulary.merges.map(([a, b]) => [a, b]), [[97, 98]]);
  assertEquals(tok.vocabSize, 256 + 1 + 4);
  assertEquals(
    trainBpe("ab ab", { vocabSize: 1000, minFrequency: 1 }).vocabSize,
    256 + 2 + 4,
  );
});

Deno.test("trainBpe() rejects a target vocabulary smaller than 256 bytes + 4 special tokens", () => {
  assertThrows(
    () => trainBpe("x", { vocabSize: 259 }),
    RangeError,
    "vocabSize must be an integer ≥ 260 (256 bytes + 4 special tokens), got 259",
  );
  assertThrows(
    () => trainBpe("x", { vocabSize: 300.5 }),
    RangeError,
    "got 300.5",
  );
  assertThrows(
    () => trainBpe("x", { vocabSize: 300, minFrequency: 0 }),
    RangeError,
    "minFrequency",
  );
  assertEquals(trainBpe("x", { vocabSize: 260 }).vocabSize, 260);
});

Deno.test("trainBpe() reports progress up to the number of merges", () => {
  const calls: [number, number][] = [];
  trainBpe(sample(7, 30_000), {
    vocabSize: 800,
    onProgress: (d, w) => calls.push([d, w]),
  });
  assertEquals(calls.at(-1), [540, 540]);
  assertEquals(calls[0], [256, 540]);
});
