import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { gunzip } from "@d3pm/core";
import {
  BpeTokenizer,
  byteLevelBpe,
  ByteTokenizer,
  loadGpt2Tokenizer,
} from "@d3pm/tokenizer";
import { InteropError, readTokenizerFiles, tokenizerFiles } from "@d3pm/hf";

async function committed(name: string): Promise<string> {
  const url = new URL(`../tokenizer/gpt2/${name}.gz`, import.meta.url);
  return new TextDecoder().decode(await gunzip(await Deno.readFile(url)));
}

Deno.test("tokenizerFiles() of GPT-2 are OpenAI's encoder.json and vocab.bpe, with the project's four special tokens added", async () => {
  const files = tokenizerFiles(await loadGpt2Tokenizer(), {
    contextLength: 1024,
  });
  assertEquals(
    JSON.parse(files.get("vocab.json")!),
    JSON.parse(await committed("encoder.json")),
  );
  const lines = (s: string) =>
    s.split("\n").filter((l) => l !== "" && !l.startsWith("#version"));
  assertEquals(
    lines(files.get("merges.txt")!),
    lines(await committed("vocab.bpe")),
  );
  const config = JSON.parse(files.get("tokenizer_config.json")!);
  assertEquals(
    Object.entries(config.added_tokens_decoder).map((
      [id, t],
    ) => [id, (t as { content: string }).content]),
    [["50256", "<|endoftext|>"], ["50257", "<|bos|>"], ["50258", "<|eos|>"], [
      "50259",
      "<|pad|>",
    ], ["50260", "<|mask|>"]],
  );
  assertEquals(config.tokenizer_class, "GPT2Tokenizer");
  assertEquals(JSON.parse(files.get("special_tokens_map.json")!), {
    bos_token: "<|bos|>",
    eos_token: "<|eos|>",
    pad_token: "<|pad|>",
    mask_token: "<|mask|>",
  });
});

Deno.test("readTokenizerFiles() reads back GPT-2's, a trained BPE's and the bytes' files as the same tokenizers", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const gpt2 = await loadGpt2Tokenizer();
    const bpe = byteLevelBpe([[116, 104], [256, 101], [32, 257], [97, 110]]);
    for (const [kind, tokenizer] of [["gpt2", gpt2], ["bpe", bpe]] as const) {
      for (
        const [name, text] of tokenizerFiles(tokenizer, { contextLength: 8 })
      ) {
        await Deno.writeTextFile(`${dir}/${name}`, text);
      }
      const back = (await readTokenizerFiles(dir))!;
      assertEquals(back.kind, kind);
      assertEquals(back.hasSpecials, true);
      assertEquals(back.baseSize, tokenizer.vocabSize - 4);
      const text = "the then an <|endoftext|> zebra";
      assertEquals([...back.tokenizer.encode(text)], [
        ...tokenizer.encode(text),
      ]);
    }
    assertEquals((await readTokenizerFiles(dir))!.endOfText, undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTokenizerFiles() loads GPT-2's tokenizer only for a vocabulary not laid out as the project's", async () => {
  const gpt2 = await loadGpt2Tokenizer();
  const bpe = byteLevelBpe([[116, 104], [256, 101]]);
  const cases = [
    ["byte", new ByteTokenizer(), 0],
    ["bpe", bpe, 0],
    ["gpt2", gpt2, 1],
  ] as const;
  for (const [kind, tokenizer, loads] of cases) {
    const dir = await Deno.makeTempDir();
    try {
      for (
        const [name, text] of tokenizerFiles(tokenizer, { contextLength: 8 })
      ) {
        await Deno.writeTextFile(`${dir}/${name}`, text);
      }
      let calls = 0;
      const loadGpt2 = () => {
        calls++;
        return Promise.resolve(gpt2);
      };
      const back = (await readTokenizerFiles(dir, { loadGpt2 }))!;
      assertEquals([back.kind, calls], [kind, loads]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("readTokenizerFiles() reads a tokenizer.json of a byte-level BPE, and refuses other models and foreign layouts", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bpe = byteLevelBpe([[116, 104], [256, 101]]);
    const files = tokenizerFiles(bpe, { contextLength: 8 });
    const vocab = JSON.parse(files.get("vocab.json")!);
    const merges = files.get("merges.txt")!.trim().split("\n").slice(1);
    const json = (
      model: Record<string, unknown>,
      pre = { type: "ByteLevel" },
    ) =>
      Deno.writeTextFile(
        `${dir}/tokenizer.json`,
        JSON.stringify({ model, pre_tokenizer: pre, added_tokens: [] }),
      );
    // Both spellings of merges: "a b" strings and [a, b] pairs.
    for (const m of [merges, merges.map((x) => x.split(" "))]) {
      await json({ type: "BPE", vocab, merges: m });
      const back = (await readTokenizerFiles(dir))!;
      assertEquals([back.kind, back.hasSpecials], ["bpe", false]);
      assertEquals([...back.tokenizer.encode("the")], [257]);
    }
    await json({ type: "WordPiece", vocab });
    await assertRejects(
      () => readTokenizerFiles(dir),
      InteropError,
      "is not a byte-level BPE",
    );
    // A byte-level BPE whose byte ids are not in byte order.
    const swapped = { ...vocab, a: 98, b: 97 };
    await json({ type: "BPE", vocab: swapped, merges });
    await assertRejects(
      () => readTokenizerFiles(dir),
      InteropError,
      "neither GPT-2's nor laid out as the project's BPE",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizerFiles() refuses a vocabulary with two ids spelling the same bytes", () => {
  // Merges (a, b) → 256 and again (a, b) → 257: two ids for "ab".
  const twice = new BpeTokenizer(
    {
      tokens: [
        ...Array.from({ length: 256 }, (_, b) => Uint8Array.of(b)),
        Uint8Array.of(97, 98),
        Uint8Array.of(97, 98),
      ],
      merges: [[97, 98, 256], [97, 98, 257]],
    },
    { id: "twice" },
  );
  const e = assertThrows(
    () => tokenizerFiles(twice, { contextLength: 8 }),
    InteropError,
  );
  assert(e.message.includes("ids 256 and 257 spell the same bytes"));
});

Deno.test("readTokenizerFiles() lists added tokens past the kept ids as extra, refuses the four specials out of order, and names a malformed line in one line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bpe = byteLevelBpe([[116, 104]]); // 257 base ids
    const write = async (decoder: Record<string, string>, merges?: string) => {
      for (const [name, text] of tokenizerFiles(bpe, { contextLength: 8 })) {
        await Deno.writeTextFile(`${dir}/${name}`, text);
      }
      const entries = Object.fromEntries(
        Object.entries(decoder).map(([id, content]) => [id, { content }]),
      );
      await Deno.writeTextFile(
        `${dir}/tokenizer_config.json`,
        JSON.stringify({ added_tokens_decoder: entries }),
      );
      if (merges !== undefined) {
        await Deno.writeTextFile(`${dir}/merges.txt`, merges);
      }
    };
    const specials = {
      257: "<|bos|>",
      258: "<|eos|>",
      259: "<|pad|>",
      260: "<|mask|>",
    };
    // The specials at 257..260 are kept; 261 is the first extra.
    await write({ ...specials, 261: "<|x|>", 262: "<|y|>" });
    let back = (await readTokenizerFiles(dir))!;
    assertEquals([back.baseSize, back.hasSpecials], [257, true]);
    assertEquals(back.extra, [{ id: 261, content: "<|x|>" }, {
      id: 262,
      content: "<|y|>",
    }]);
    // Without them, an added token at the base size is already extra.
    await write({ 257: "<|x|>" });
    back = (await readTokenizerFiles(dir))!;
    assertEquals([back.hasSpecials, back.extra], [false, [{
      id: 257,
      content: "<|x|>",
    }]]);
    // <|eos|> at the base size and <|bos|> after it: refused, not dropped.
    await write({ ...specials, 257: "<|eos|>", 258: "<|bos|>" });
    await assertRejects(
      () => readTokenizerFiles(dir),
      InteropError,
      "but not at ids 257..260 in that order",
    );
    await write({}, "#version: 0.2\nt h\nt\n");
    const error = await assertRejects(
      () => readTokenizerFiles(dir),
      InteropError,
      "merges.txt line 3",
    );
    assert(!error.message.includes("\n"), error.message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tokenizerFiles() adds <|endoftext|> wherever the vocabulary spells it, id 0 included", () => {
  const eot = new TextEncoder().encode("<|endoftext|>");
  const tok = new BpeTokenizer({
    tokens: [eot, ...Array.from({ length: 256 }, (_, b) => Uint8Array.of(b))],
    merges: [],
  }, { id: "t" });
  const config = JSON.parse(
    tokenizerFiles(tok, { contextLength: 8 }).get("tokenizer_config.json")!,
  );
  assertEquals(config.added_tokens_decoder["0"].content, "<|endoftext|>");
});
