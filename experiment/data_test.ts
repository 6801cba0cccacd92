// prepareData()'s splits and blocks against an independent packing of the
// embedded WikiText-2 read here (byte tokenizer: the ids are the UTF-8
// bytes; each article wrapped in bos … eos, cut into blocks, a partial last
// block dropped), and its bytes per token against the UTF-8 byte count.

import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertRejects,
} from "@std/assert";
import {
  embeddedWikiText2,
  layoutSuffix,
  readArticles,
  type Split,
  TEXT_READING,
} from "@d3pm/data";
import { sha256Hex } from "@d3pm/core";
import { byteLevelBpe, saveBpeTokenizer } from "@d3pm/tokenizer";
import { resolveConfig } from "./config.ts";
import { prepareData, trainPrefix } from "./data.ts";
import { ConfigError } from "./options.ts";
import { RunFolder } from "./run_folder.ts";
import { judgeKey, judgePlan } from "./judge.ts";
import { compareData } from "./_same_data.ts";

/** The split's ids with separators, cut into blocks of `length`. */
async function blocksOf(
  split: Split,
  length: number,
  bos: number,
  eos: number,
) {
  const docs: Uint8Array[] = [];
  for await (const text of readArticles(embeddedWikiText2(split))) {
    docs.push(new TextEncoder().encode(text));
  }
  const bytes = docs.reduce((a, d) => a + d.length, 0);
  const stream = new Uint32Array(bytes + 2 * docs.length);
  let at = 0;
  for (const d of docs) {
    stream[at++] = bos;
    stream.set(d, at);
    at += d.length;
    stream[at++] = eos;
  }
  const count = Math.floor(stream.length / length);
  return { stream: stream.subarray(0, count * length), count, bytes };
}

Deno.test("prepareData(): train, valid and test blocks are their own splits' articles packed with bos/eos, the first --eval-blocks/--valid-blocks kept, and onTokenized told all their ids", async () => {
  const out = await Deno.makeTempDir();
  try {
    const config = resolveConfig({
      preset: "micro",
      out,
      tokenizer: "byte",
      evalBlocks: 5,
      validBlocks: 3,
    });
    // The run re-checks its memory budget with the corpus's ids counted,
    // told them once tokenized (before they are packed in place).
    const told: number[] = [];
    const data = await prepareData(config, new RunFolder(out), () => {}, {
      onTokenized: (ids) => told.push(ids),
    });
    const { bos, eos } = data.specials;
    const L = config.blockLength;
    assertEquals([bos, eos], [256, 257]);
    const valid = await blocksOf("valid", L, bos, eos);
    const testBytes = (await blocksOf("test", L, bos, eos)).bytes;
    assertEquals(told, [data.facts.trainTokens + valid.bytes + testBytes]);
    for (
      const [split, got, keep] of [
        ["train", data.train, 0],
        ["valid", data.valid, 3],
        ["test", data.test, 5],
      ] as const
    ) {
      const want = await blocksOf(split, L, bos, eos);
      const n = keep > 0 ? Math.min(keep, want.count) : want.count;
      assertEquals([got.count, got.length], [n, L], split);
      assertEquals(got.data, want.stream.slice(0, n * L), split);
    }
    const test = await blocksOf("test", L, bos, eos);
    // Byte tokens: one UTF-8 byte each, separators not counted.
    assertEquals(data.facts.bytesPerToken, 1);
    assertEquals(data.facts.testTokens, test.bytes);
    assertEquals(data.facts.validBlocks, 3);
    // RunData.files is required (it was optional though always set; this
    // line did not type-check then): where each split was read.
    const files: Record<Split, string> = data.files;
    assertEquals(Object.keys(files).sort(), ["test", "train", "valid"]);
    for (const split of ["train", "valid", "test"] as const) {
      assert(files[split].includes(split), `${split}: ${files[split]}`);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

// A corpus folder of known articles: the byte tokenizer's ids are their
// UTF-8 bytes, so every figure below is computed here from the texts.
const ARTICLES = [
  " = A = \n alpha beta \n",
  " = B = \n gamma \n",
  " = C = \n delta epsilon zeta \n",
];

async function corpusFolder(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "data-test-" });
  for (const split of ["train", "valid", "test"]) {
    await Deno.writeTextFile(`${dir}/wiki.${split}.tokens`, ARTICLES.join(""));
  }
  return dir;
}

/** The articles' bytes, each wrapped in bos … eos, and each one's start. */
function wrapped(bos: number, eos: number) {
  const docs = ARTICLES.map((a) => new TextEncoder().encode(a));
  const ids: number[] = [];
  const starts: number[] = [];
  for (const d of docs) {
    starts.push(ids.length);
    ids.push(bos, ...d, eos);
  }
  return { ids: Uint32Array.from(ids), starts };
}

Deno.test("trainPrefix() is the first N ids of the train split's articles with bos/eos, in blocks, counting the articles begun; more than the split has is refused", async () => {
  const dir = await corpusFolder();
  const out = await Deno.makeTempDir();
  try {
    const L = 8;
    const config = resolveConfig({
      preset: "micro",
      out,
      data: dir,
      tokenizer: "byte",
      blockLength: L,
    });
    const data = await prepareData(config, new RunFolder(out), () => {});
    const { ids, starts } = wrapped(data.specials.bos, data.specials.eos);
    const first = ARTICLES[0].length + 2; // article 0 with its bos and eos
    // Cuts: inside the first article, before and after its eos, at the start
    // and just inside the second one, and the whole split.
    for (const n of [9, first - 1, first, first + 1, 30, ids.length]) {
      const { blocks, articles } = await trainPrefix(config, data, n);
      const count = Math.floor(n / L);
      assertEquals([blocks.count, blocks.length], [count, L], `${n}`);
      assertEquals(blocks.data, ids.slice(0, count * L), `${n}`);
      assertEquals(articles, starts.filter((s) => s < n).length, `${n}`);
    }
    await assertRejects(
      () => trainPrefix(config, data, ids.length + 1),
      ConfigError,
      `The train split has ${ids.length} tokens with BOS/EOS, fewer than the ${
        ids.length + 1
      } asked for`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("prepareData(): --eval-blocks 0 keeps every test block and 1 keeps one; the unigram entropy is the train bytes' in nats", async () => {
  const dir = await corpusFolder();
  const out = await Deno.makeTempDir();
  try {
    const L = 8;
    const at = (evalBlocks: number, validBlocks: number) =>
      prepareData(
        resolveConfig({
          preset: "micro",
          out,
          data: dir,
          tokenizer: "byte",
          blockLength: L,
          evalBlocks,
          validBlocks,
          exactBlocks: 1,
        }),
        new RunFolder(out),
        () => {},
      );
    const all = await at(0, 1);
    const { ids } = wrapped(all.specials.bos, all.specials.eos);
    const count = Math.floor(ids.length / L);
    assertEquals(all.test.count, count);
    assertEquals(all.test.data, ids.slice(0, count * L));
    assertEquals([all.valid.count, all.valid.data], [1, ids.slice(0, L)]);
    const one = await at(1, count);
    assertEquals([one.test.count, one.test.data], [1, ids.slice(0, L)]);
    assertEquals(one.valid.count, count);
    // −Σ p ln p over the byte counts of the train split (no separators);
    // "z" occurs once.
    const bytes = new TextEncoder().encode(ARTICLES.join(""));
    const counts = new Map<number, number>();
    for (const b of bytes) counts.set(b, (counts.get(b) ?? 0) + 1);
    assert([...counts.values()].includes(1));
    let h = 0;
    for (const c of counts.values()) {
      h -= (c / bytes.length) * Math.log(c / bytes.length);
    }
    assertAlmostEquals(all.facts.unigramEntropy, h, 1e-12);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("prepareData(): a BPE trained to its full size says nothing of shrinking and is read from the tokenizer cache the second time; one the corpus cannot fill says so", async () => {
  const dir = await corpusFolder();
  const out = await Deno.makeTempDir();
  try {
    const lines = async (vocabSize: number) => {
      const log: string[] = [];
      const config = resolveConfig({
        preset: "micro",
        out,
        data: dir,
        tokenizer: "bpe",
        vocabSize,
        blockLength: 8,
      });
      const data = await prepareData(
        config,
        new RunFolder(out),
        (l) => log.push(l),
      );
      return { log, vocab: data.tokenizer.vocabSize };
    };
    const shrink = /^note: the train split has no more pairs to merge/;
    // 262: the 260 ids of bytes and specials, and two merges (" a" and
    // "a " are among the pairs seen twice).
    const full = await lines(262);
    assertEquals(full.vocab, 262);
    assertEquals(full.log.filter((l) => shrink.test(l)), []);
    const again = await lines(262);
    assertEquals(
      again.log.filter((l) => l.startsWith("tokenizer:")).map((l) =>
        l.replace(/ from .*/, "")
      ),
      ["tokenizer: BPE 262"],
    );
    const big = await lines(5000);
    assert(big.vocab < 5000);
    assertEquals(big.log.filter((l) => shrink.test(l)).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("prepareData() on two plain-text folders: each records its format and files, and other text, or the same bytes as WikiText, gives another judge key and differing data", async () => {
  const dirs: string[] = [];
  const out = await Deno.makeTempDir();
  const folder = async (names: string[], text: string) => {
    const dir = await Deno.makeTempDir({ prefix: "own-text-" });
    dirs.push(dir);
    for (const n of names) await Deno.writeTextFile(`${dir}/${n}`, text);
    return dir;
  };
  const own = ["train.txt", "validation.txt", "test.txt"];
  const text = ARTICLES.join("").repeat(4);
  try {
    const prepared = async (data: string) => {
      const config = resolveConfig({ preset: "micro", out, data });
      const d = await prepareData(config, new RunFolder(out), () => {});
      const key = judgeKey(judgePlan(config, d, "tfjs on cpu"));
      return { d, key, side: { name: data, data, record: d.record } };
    };
    const a = await prepared(await folder(own, text));
    const b = await prepared(await folder(own, text.replace("alpha", "omega")));
    const w = await prepared(
      await folder(
        ["train", "valid", "test"].map((s) => `wiki.${s}.tokens`),
        text,
      ),
    );
    assertEquals(a.d.record.format, "text");
    assertEquals(a.d.record.reading, TEXT_READING);
    assertEquals(a.d.record.files, {
      train: "train.txt",
      valid: "validation.txt",
      test: "test.txt",
    });
    // Plain text is one document: one bos, where WikiText has one per article.
    const bos = (x: typeof a) =>
      x.d.train.data.filter((id) => id === x.d.specials.bos).length;
    assertEquals([bos(a), bos(w)], [1, 12]);
    assertEquals(w.d.record.format, undefined);
    assertEquals(w.d.record.reading, undefined);
    assertEquals(w.d.trainSha256, a.d.trainSha256); // the same bytes
    assertEquals(new Set([a.key, b.key, w.key]).size, 3);
    assert(compareData(a.side, b.side).differ?.includes("train SHA-256"));
    assert(
      compareData(w.side, a.side).differ?.includes(
        `plain text (reading ${TEXT_READING} of ${TEXT_READING}) in ${a.side.name}`,
      ),
    );
  } finally {
    for (const d of [...dirs, out]) await Deno.remove(d, { recursive: true });
  }
});

Deno.test("prepareData() caches a BPE trained on plain text apart from one trained on the same bytes as WikiText", async () => {
  const dirs: string[] = [];
  const out = await Deno.makeTempDir();
  // A text of its own (a random word), so that no earlier run cached it.
  const word = crypto.randomUUID().slice(0, 8);
  const text = ` = ${word} = \n ${word} alpha beta \n = B = \n gamma \n`.repeat(
    8,
  );
  // Known before training, so that a failed run still cleans up after it.
  const hash = sha256Hex(text).slice(0, 16);
  const made = [layoutSuffix("text"), ""].map((f) =>
    `.cache/tokenizers/bpe-280-${hash}${f}.json`
  );
  try {
    // The same bytes read as WikiText must train again, not load the BPE
    // the plain-text run cached.
    for (
      const names of [["train.txt", "valid.txt", "test.txt"], [
        "wiki.train.tokens",
        "wiki.valid.tokens",
        "wiki.test.tokens",
      ]]
    ) {
      const dir = await Deno.makeTempDir({ prefix: "own-text-" });
      dirs.push(dir);
      for (const n of names) await Deno.writeTextFile(`${dir}/${n}`, text);
      const config = resolveConfig({
        preset: "micro",
        out,
        data: dir,
        tokenizer: "bpe",
        vocabSize: 280,
      });
      const lines: string[] = [];
      const d = await prepareData(
        config,
        new RunFolder(out),
        (l) => lines.push(l),
      );
      assert(
        lines.some((l) => l.startsWith("tokenizer: training BPE")),
        lines.join("\n"),
      );
      assertEquals(d.trainSha256.slice(0, 16), hash);
    }
    for (const f of made) await Deno.stat(f); // both were written
  } finally {
    for (const d of [...dirs, out]) await Deno.remove(d, { recursive: true });
    // Its random text's tokenizers and token caches: none is of use again.
    for (const f of made) await Deno.remove(f).catch(() => {});
    const tokens = await Array.fromAsync(Deno.readDir(".cache/tokens"))
      .catch(() => []); // none made
    for (const e of tokens) {
      if (e.name.startsWith(`${hash}-`)) {
        await Deno.remove(`.cache/tokens/${e.name}`);
      }
    }
  }
});

Deno.test("prepareData() trains the BPE again, with a warning, when the cached file is not the one its name stands for (another tokenizer copied there)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "own-text-" });
  const out = await Deno.makeTempDir();
  // A text of its own, so that no earlier run cached it.
  const word = crypto.randomUUID().slice(0, 8);
  const text = ` ${word} alpha beta \n gamma ${word}\n`.repeat(8);
  const hash = sha256Hex(text).slice(0, 16);
  const cached = `.cache/tokenizers/bpe-280-${hash}${
    layoutSuffix("text")
  }.json`;
  try {
    for (const n of ["train", "valid", "test"]) {
      await Deno.writeTextFile(`${dir}/${n}.txt`, text);
    }
    const config = resolveConfig({
      preset: "micro",
      out,
      data: dir,
      tokenizer: "bpe",
      vocabSize: 280,
    });
    const prepare = async () => {
      const lines: string[] = [];
      const d = await prepareData(config, new RunFolder(out), (l) => {
        lines.push(l);
      });
      return { id: d.record.tokenizer.id, lines: lines.join("\n") };
    };
    const first = await prepare();
    assert(first.lines.includes("tokenizer: training BPE"), first.lines);
    const again = await prepare();
    assertEquals(again.id, first.id);
    assert(again.lines.includes(`from ${cached}`), again.lines);
    // What tokenizer:train --out wrote there: a smaller BPE of other text.
    await saveBpeTokenizer(byteLevelBpe([[104, 105]]), cached, {
      meta: { command: "tokenizer:train", input: "small.txt" },
    });
    const replaced = await prepare();
    assertEquals(replaced.id, first.id);
    assert(
      replaced.lines.includes(
        `warning: the cached tokenizer ${cached} is not the one its name stands for (it records command "tokenizer:train", vocabSize none, trainSha256 none, layout none; expected command "experiment", vocabSize 280`,
      ),
      replaced.lines,
    );
    assert(replaced.lines.includes("tokenizer: training BPE"));
  } finally {
    for (const d of [dir, out]) await Deno.remove(d, { recursive: true });
    await Deno.remove(cached).catch(() => {});
    const tokens = await Array.fromAsync(Deno.readDir(".cache/tokens"))
      .catch(() => []);
    for (const e of tokens) {
      if (e.name.startsWith(`${hash}-`)) {
        await Deno.remove(`.cache/tokens/${e.name}`);
      }
    }
  }
});

Deno.test("prepareData() refuses in one line a split of only whitespace (not 'lower --block-length')", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/run`;
  try {
    const text = "Some words of text.\n".repeat(40); // 800 bytes
    for (const s of ["train", "valid", "test"]) {
      await Deno.writeTextFile(`${dir}/${s}.txt`, text);
    }
    const refused = async (message: string, options = {}) => {
      const config = resolveConfig({
        preset: "micro",
        out,
        data: dir,
        ...options,
      });
      const e = await assertRejects(
        () => prepareData(config, new RunFolder(out), () => {}),
        ConfigError,
      );
      assertEquals(e.message, message);
    };
    await Deno.writeTextFile(`${dir}/valid.txt`, " \t\n\n  \n".repeat(1000));
    const real = await Deno.realPath(dir);
    await refused(
      `The valid split (${real}/valid.txt) holds no text: once read it is empty or only whitespace (spaces, tabs, line breaks), which is dropped; give it text`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareData() notes a test split of fewer blocks than --eval-blocks, naming its file and both counts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = "Some words of text.\n".repeat(40); // 802 ids: 25 blocks of 32
    for (const s of ["train", "valid", "test"]) {
      await Deno.writeTextFile(`${dir}/${s}.txt`, text);
    }
    const notes = async (evalBlocks: number) => {
      const lines: string[] = [];
      const config = resolveConfig({ preset: "micro", data: dir, evalBlocks });
      const d = await prepareData(
        config,
        new RunFolder(`${dir}/run`),
        (l) => lines.push(l),
      );
      return {
        count: d.test.count,
        notes: lines.filter((l) => l.startsWith("note:")),
      };
    };
    assertEquals(await notes(26), {
      count: 25,
      notes: [
        `note: the test split (${await Deno.realPath(
          dir,
        )}/test.txt) has 25 block(s) of 32, fewer than the 26 of --eval-blocks: the figures are on all 25`,
      ],
    });
    assertEquals(await notes(25), { count: 25, notes: [] });
    assertEquals(await notes(0), { count: 25, notes: [] }); // 0: all
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("prepareData() records a corpus file that is a link under the name the folder gives it, with its target's hash", async () => {
  const out = await Deno.makeTempDir();
  const dir = await Deno.makeTempDir({ prefix: "own-text-" });
  const elsewhere = await Deno.makeTempDir();
  try {
    const text = ARTICLES.join("").repeat(4);
    await Deno.writeTextFile(`${elsewhere}/corpus-2026.txt`, text);
    await Deno.symlink(`${elsewhere}/corpus-2026.txt`, `${dir}/train.txt`);
    for (const n of ["valid.txt", "test.txt"]) {
      await Deno.writeTextFile(`${dir}/${n}`, text);
    }
    const config = resolveConfig({ preset: "micro", out, data: dir });
    const d = await prepareData(config, new RunFolder(out), () => {});
    assertEquals(d.record.files, {
      train: "train.txt",
      valid: "valid.txt",
      test: "test.txt",
    });
    assertEquals(d.files.train, `${await Deno.realPath(dir)}/train.txt`);
    assertEquals(d.trainSha256, sha256Hex(text));
  } finally {
    for (const d of [out, dir, elsewhere]) {
      await Deno.remove(d, { recursive: true });
    }
  }
});
