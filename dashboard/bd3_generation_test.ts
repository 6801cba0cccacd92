// Block diffusion (bd3) in the playground, on a real micro model (untrained
// weights, tfjs): a frame per step of each block with the steps counted per
// block, a prompt kept as the prefix, blanks refused in one line,
// cancellation between steps, no tensor left behind; and the server's routes
// over it.
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  BD3,
  type Contestant,
  type ContestantProcess,
  D3PM,
  placeModel,
  resolveConfig,
} from "@d3pm/experiment";
import { ByteTokenizer } from "@d3pm/tokenizer";
import { Transformer } from "@d3pm/transformer";
import {
  dashboardHandler,
  DEFAULT_LIMITS,
  type Frame,
  generateFrames,
  GenerationService,
  type GenerationStart,
  HttpError,
  type LoadedModel,
  parseGenerationInput,
} from "./mod.ts";
import { fakeRun, readEvents } from "./_test_util.ts";

const LENGTH = 16, BLOCK = 4, T = 100;
const tokenizer = new ByteTokenizer();
const MASK = tokenizer.special.mask;
const config = resolveConfig({
  preset: "micro",
  models: "ar,bd3",
  "block-length": LENGTH,
  "bd3-block": BLOCK,
  "diffusion-steps": T,
  "n-layer": 1,
  "d-model": 8,
  "n-head": 1,
  tokenizer: "byte",
});
const process = BD3.process(config, {
  tokenizer,
  specials: {
    bos: tokenizer.special.bos,
    eos: tokenizer.special.eos,
    pad: tokenizer.special.pad,
    mask: MASK,
  },
});

async function bd3Model(): Promise<LoadedModel> {
  await tf.setBackend("cpu");
  const model = new Transformer(BD3.modelConfig(config, tokenizer.vocabSize), {
    seed: 0,
  });
  return {
    contestant: BD3 as unknown as Contestant,
    process: process as unknown as ContestantProcess,
    tokenizer,
    length: LENGTH,
    placed: await placeModel(model, "tfjs", "bd3"),
  };
}

async function run(
  loaded: LoadedModel,
  body: Record<string, unknown>,
  onFrame?: (f: Frame) => void,
  signal = new AbortController().signal,
): Promise<{ start: GenerationStart; frames: Frame[] }> {
  const input = parseGenerationInput(
    { run: "r", model: "bd3", ...body },
    DEFAULT_LIMITS,
  );
  let start: GenerationStart | undefined;
  const frames: Frame[] = [];
  for await (const e of generateFrames(loaded, input, signal)) {
    if ("start" in e) start = e.start;
    else {
      frames.push(e.frame);
      onFrame?.(e.frame);
    }
  }
  return { start: start!, frames };
}

const maskedIn = (tokens: number[], block: number) =>
  tokens.slice(block * BLOCK, (block + 1) * BLOCK).filter((x) => x === MASK)
    .length;

Deno.test("generateFrames() runs bd3 block by block: a frame per step of each block, steps per block, nothing masked at the end, no tensor left", async () => {
  const loaded = await bd3Model();
  try {
    const before = tf.memory().numTensors;
    const { start, frames } = await run(loaded, { steps: 2 });
    assertEquals(tf.memory().numTensors, before);
    // 4 blocks of 4, 2 steps each: 8 steps, numbered across the blocks.
    assertEquals(
      [start.steps, start.stepsPerBlock, start.blockSize, start.maskId],
      [8, 2, 4, MASK],
    );
    assertEquals(start.tokens, Array(LENGTH).fill(MASK));
    assertEquals(start.given, []);
    assertEquals(frames.map((f) => f.step), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert(frames.every((f) => f.steps === 8 && f.tokens.length === LENGTH));
    for (const f of frames) {
      // Step j works on block ⌈j/2⌉ − 1: the blocks before it are done, the
      // blocks after it untouched; its last step finishes it.
      const k = Math.ceil(f.step / 2) - 1;
      for (let b = 0; b < 4; b++) {
        const want = b < k || (b === k && f.step % 2 === 0)
          ? 0
          : b > k
          ? BLOCK
          : maskedIn(f.tokens, b);
        assertEquals(maskedIn(f.tokens, b), want, `step ${f.step} block ${b}`);
      }
    }
    assertEquals(frames.at(-1)!.tokens.includes(MASK), false);
    assert(frames.at(-1)!.forwardPasses > 0);
    // The default: min(64, T) steps per block.
    assertEquals((await run(loaded, {})).frames.length, 4 * 64);
    assertEquals(tf.memory().numTensors, before);
  } finally {
    loaded.placed.dispose();
  }
});

Deno.test("generateFrames() keeps a prompt's ids as bd3's prefix and starts at the first block it does not fill", async () => {
  const loaded = await bd3Model();
  try {
    const { start, frames } = await run(loaded, {
      prompt: "abcde",
      steps: 2,
    });
    const ids = [97, 98, 99, 100, 101];
    assertEquals(start.tokens, [...ids, ...Array(LENGTH - 5).fill(MASK)]);
    assertEquals(start.given, [0, 1, 2, 3, 4]);
    // Block 0 is the prompt's: its steps are skipped, block 1 starts at 3.
    assertEquals(frames.map((f) => f.step), [3, 4, 5, 6, 7, 8]);
    for (const f of frames) assertEquals(f.tokens.slice(0, 5), ids);
    assertEquals(frames.at(-1)!.tokens.includes(MASK), false);
  } finally {
    loaded.placed.dispose();
  }
});

Deno.test("generateFrames() refuses bd3 blanks, a sampler it lacks and steps past T in one line each, before any event", async () => {
  const loaded = await bd3Model();
  try {
    const refused = async (body: Record<string, unknown>, message: string) => {
      const events: unknown[] = [];
      const e = await assertRejects(
        async () => {
          await run(loaded, body, (f) => events.push(f));
        },
        HttpError,
      );
      assertEquals([e.status, e.message, events.length], [400, message, 0]);
    };
    const row = [97, 98, ...Array(LENGTH - 3).fill(MASK), 99];
    await refused(
      { tokens: row },
      "Model bd3 generates block by block, left to right: it cannot fill blanks given later context; send a prompt instead of tokens",
    );
    await refused(
      { sampler: "confidence", steps: 2 },
      "Model bd3 unmasks each block ancestrally: sampler must be ancestral or cached, got confidence",
    );
    await refused(
      { steps: T + 1 },
      `steps must be at most the process's T = ${T} (per block), got ${T + 1}`,
    );
    // T steps per block is allowed (the check is per block, not per row).
    const { frames } = await run(loaded, { steps: T, prompt: "abcdefghijkl" });
    assertEquals(frames.length, T);
    assertEquals(frames[0].step, 3 * T + 1);
  } finally {
    loaded.placed.dispose();
  }
});

Deno.test("generateFrames() stops bd3 between steps when the signal aborts, and leaves no tensor behind", async () => {
  const loaded = await bd3Model();
  try {
    const before = tf.memory().numTensors;
    const ac = new AbortController();
    // Abort in block 2 of 4 (2 steps each): blocks 0 and 1 sit in the cache.
    const { frames } = await run(
      loaded,
      { steps: 2 },
      (f) => f.step === 5 && ac.abort("client gone"),
      ac.signal,
    );
    // The frame made while the consumer read step 5 may still come; no more.
    assertEquals(frames.slice(0, 5).map((f) => f.step), [1, 2, 3, 4, 5]);
    assert(frames.length <= 6, `${frames.length} frames`);
    assertEquals(frames.at(-1)!.tokens.includes(MASK), true);
    assertEquals(tf.memory().numTensors, before);
  } finally {
    loaded.placed.dispose();
  }
});

Deno.test("the server streams a bd3 generation, tells the page its blocks, and refuses its blanks with one line", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const loaded = await bd3Model();
  try {
    await fakeRun(`${base}/good`, { models: "ar,bd3" });
    await Deno.writeTextFile(
      `${base}/good/seed-0/bd3/process.json`,
      JSON.stringify(process.toJSON()),
    );
    const generation = new GenerationService(() => Promise.resolve(loaded));
    const handler = dashboardHandler({
      root: base,
      generation,
      pollMs: 20,
      keepAliveMs: 60_000,
    }, { page: { html: "<p>x</p>", js: "", css: "" } });
    const info = await (await handler(
      new Request(
        "http://127.0.0.1/api/run/unmasking?run=good&seed=0&model=bd3",
      ),
    )).json();
    assertEquals(
      [info.network, info.maskId, info.T, info.blockSize],
      ["bidirectional", MASK, T, BLOCK],
    );
    assert(info.tfjsOnly.includes("block attention"), info.tfjsOnly);
    const post = (body: unknown) =>
      handler(
        new Request("http://127.0.0.1/api/generate", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        }),
      );
    const res = await post({
      run: "good",
      model: "bd3",
      steps: 1,
      prompt: "a",
    });
    assertEquals(res.status, 200);
    const events = await readEvents(
      res,
      (ev) => ev.some((e) => e.event === "done" || e.event === "error"),
    );
    assertEquals(events.map((e) => e.event), [
      "start",
      "frame",
      "frame",
      "frame",
      "frame",
      "done",
    ]);
    const start = JSON.parse(events[0].data);
    assertEquals([start.steps, start.stepsPerBlock], [4, 1]);
    assertEquals(JSON.parse(events[4].data).tokens[0], 97);
    const blanks = await post({
      run: "good",
      model: "bd3",
      tokens: [97, ...Array(LENGTH - 1).fill(MASK)],
    });
    assertEquals(blanks.status, 400);
    assertEquals(
      (await blanks.json()).error,
      "Model bd3 generates block by block, left to right: it cannot fill blanks given later context; send a prompt instead of tokens",
    );
    assertEquals(
      [
        generation.completed,
        generation.cancelled,
        generation.failed,
        generation.invalid,
      ],
      [1, 0, 0, 1],
    );
  } finally {
    loaded.placed.dispose();
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("the page is told a staggered D3PM generates on the server only (the browser's engine has no synchronous forward pass), and gets the process without the run's weights record", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const d3pm = D3PM.process(
    resolveConfig({ preset: "micro", models: "ar,d3pm" }),
    { tokenizer, specials: tokenizer.special },
  ).toJSON();
  const handler = dashboardHandler({
    root: base,
    generation: new GenerationService(() =>
      Promise.reject(new Error("unused"))
    ),
    pollMs: 20,
    keepAliveMs: 60_000,
  }, { page: { html: "<p>x</p>", js: "", css: "" } });
  const info = async (stagger?: { span: number; delta: number }) => {
    await fakeRun(`${base}/r`, { models: "ar,d3pm" });
    await Deno.writeTextFile(
      `${base}/r/seed-0/d3pm/process.json`,
      // With the weights record a run writes beside the process.
      JSON.stringify({
        ...(stagger ? { ...d3pm, stagger } : d3pm),
        weightsSha256: "0".repeat(64),
        weightsSeed: 0,
      }),
    );
    const res = await handler(
      new Request("http://127.0.0.1/api/run/unmasking?run=r&seed=0&model=d3pm"),
    );
    const body = await res.json();
    await Deno.remove(`${base}/r`, { recursive: true });
    return body;
  };
  const plain = await info();
  assertEquals(plain.tfjsOnly, undefined);
  assertEquals(plain.spec, d3pm);
  const staggered = await info({ span: 4, delta: 0.5 });
  assert(staggered.tfjsOnly.includes("its masking is staggered"), staggered);
  assertEquals(staggered.spec.stagger, { span: 4, delta: 0.5 });
  await Deno.remove(base, { recursive: true });
});
