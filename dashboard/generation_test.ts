// generateFrames() on fake models of each kind (causal, unmasking, block by
// block, none; stepping or not) and a stubbed clock: the start row, the
// refusals with their status, and each frame's timing figures. Written
// against mutants of generation.ts the tests let pass (tools/mutate.ts and
// near misses planted by hand; see docs/testing.md).
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { ByteTokenizer } from "@d3pm/tokenizer";
import type {
  Contestant,
  ContestantProcess,
  GenerationRequest,
} from "@d3pm/experiment";
import {
  DEFAULT_LIMITS,
  type Frame,
  generateFrames,
  GenerationService,
  type GenerationStart,
  HttpError,
  type LoadedModel,
  type ModelLoader,
  parseGenerationInput,
} from "./mod.ts";
import { sleep } from "./follow.ts";

const MASK = 259;
const LENGTH = 8;

interface FakeOptions {
  /** The causal process's start token (none: the process names none). */
  start?: number;
  /** A device generator: no step reported, the row at the end. */
  stepless?: boolean;
  /** Run before each step is reported (and before a stepless one returns). */
  tick?: (step: number) => void;
  /** Tokens per block (block kind). */
  blockSize?: number;
  /** Whether the model reads t. */
  timeConditioned?: boolean;
}

/** Reveal `n` masks of `row` from the left within [from, to). */
function reveal(row: Int32Array, n: number, from = 0, to = row.length) {
  for (let i = from; i < to && n > 0; i++) {
    if (row[i] === MASK) (row[i] = 97 + (i % 26)), n--;
  }
}

/** A fake model of `kind` whose generator records each request. */
function fakeModel(
  kind: "causal" | "unmasking" | "block" | "none",
  options: FakeOptions = {},
): LoadedModel & { requests: GenerationRequest[] } {
  const requests: GenerationRequest[] = [];
  const bs = options.blockSize ?? 4;
  const tick = options.tick ?? (() => {});
  const generate = async (
    _p: unknown,
    _m: unknown,
    req: GenerationRequest,
  ) => {
    requests.push(req);
    let row: Int32Array;
    const report = async (step: number, steps: number) => {
      tick(step);
      if (!options.stepless) {
        await req.onStep?.({
          step,
          steps,
          tokens: row.slice(),
          forwardPasses: step,
        });
      }
    };
    if (kind === "causal") {
      const p = req.prefix ?? new Int32Array(0);
      row = new Int32Array(req.length);
      row[0] = options.start ?? 0;
      row.set(p, 1);
      const steps = req.length - 1 - p.length;
      for (let s = 1; s <= steps; s++) {
        row[p.length + s] = 97 + s;
        await report(s, steps);
      }
      return { tokens: row, forwardPasses: steps };
    }
    if (kind === "none") {
      // Its own generator: the whole row in one call, the prefix kept.
      row = new Int32Array(req.length).fill(120);
      if (req.prefix) row.set(req.prefix);
      if (options.stepless) tick(-1);
      else await report(1, 1);
      return { tokens: row, forwardPasses: 1 };
    }
    row = req.prompt?.slice() ?? new Int32Array(req.length).fill(MASK);
    if (req.prefix) row.set(req.prefix);
    const steps = req.steps!;
    if (kind === "unmasking") {
      for (let s = 1; s <= steps; s++) {
        const left = row.filter((x) => x === MASK).length;
        reveal(row, Math.ceil(left / (steps - s + 1)));
        await report(s, steps);
      }
    } else {
      const blocks = req.length / bs;
      for (
        let b = Math.floor((req.prefix?.length ?? 0) / bs);
        b < blocks;
        b++
      ) {
        for (let j = 1; j <= steps; j++) {
          const inBlock = row.subarray(b * bs, (b + 1) * bs);
          const left = inBlock.filter((x) => x === MASK).length;
          reveal(row, Math.ceil(left / (steps - j + 1)), b * bs, (b + 1) * bs);
          await report(b * steps + j, blocks * steps);
        }
      }
    }
    if (options.stepless) tick(-1);
    return { tokens: row, forwardPasses: 7 };
  };
  const contestant = {
    kind: `fake-${kind}`,
    network: kind === "causal" ? "causal" : "bidirectional",
    ...(kind === "unmasking"
      ? { unmasking: { maskId: () => MASK, steps: () => 50 } }
      : {}),
    ...(kind === "block"
      ? {
        blockUnmasking: {
          maskId: () => MASK,
          steps: () => 50,
          blockSize: () => bs,
        },
      }
      : {}),
    generate,
  } as unknown as Contestant;
  const process = {
    toJSON: () => (options.start === undefined ? {} : { start: options.start }),
  } as unknown as ContestantProcess;
  return {
    contestant,
    process,
    tokenizer: new ByteTokenizer(),
    length: LENGTH,
    placed: {
      model: { timeConditioned: options.timeConditioned ?? false } as never,
      engine: "fake",
      dispose() {},
    },
    requests,
  };
}

/** The start and frames of a request `body` (run and model filled in). */
async function run(
  loaded: LoadedModel,
  body: Record<string, unknown>,
): Promise<{ start: GenerationStart; frames: Frame[] }> {
  const input = parseGenerationInput(
    { run: "r", model: "x", ...body },
    DEFAULT_LIMITS,
  );
  let start: GenerationStart | undefined;
  const frames: Frame[] = [];
  const signal = new AbortController().signal;
  for await (const e of generateFrames(loaded, input, signal)) {
    if ("start" in e) start = e.start;
    else frames.push(e.frame);
  }
  return { start: start!, frames };
}

/** The HttpError a request is refused with, before any event. */
async function refusal(
  loaded: LoadedModel,
  body: Record<string, unknown>,
): Promise<HttpError> {
  const input = parseGenerationInput(
    { run: "r", model: "x", ...body },
    DEFAULT_LIMITS,
  );
  const events: unknown[] = [];
  const e = await assertRejects(async () => {
    for await (
      const ev of generateFrames(loaded, input, new AbortController().signal)
    ) events.push(ev);
  }, HttpError);
  assertEquals(events, [], "no event before the refusal");
  return e;
}

/** Stub `performance.now()` with a clock the test moves, during `f`. */
async function withClock<T>(
  f: (clock: { ms: number }) => Promise<T>,
): Promise<T> {
  const clock = { ms: 1_000_000 };
  const had = Object.getOwnPropertyDescriptor(performance, "now");
  Object.defineProperty(performance, "now", {
    value: () => clock.ms,
    configurable: true,
    writable: true,
  });
  try {
    return await f(clock);
  } finally {
    if (had) Object.defineProperty(performance, "now", had);
    else delete (performance as { now?: unknown }).now;
  }
}

/** Close enough for figures computed in another order. */
function near(actual: number, expected: number, what: string) {
  assert(
    Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual}, expected ${expected}`,
  );
}

Deno.test("generateFrames() hands a model that neither draws tokens nor unmasks to its contestant's own generate: the prompt as its prefix, no steps, its row as the frame", async () => {
  for (const stepless of [false, true]) {
    const fake = fakeModel("none", { stepless });
    const { start, frames } = await run(fake, { prompt: "ab" });
    assertEquals(start, {
      model: "fake-none",
      tokens: [97, 98, 0, 0, 0, 0, 0, 0],
      given: [0, 1],
      steps: 6,
      engine: "fake",
    });
    assertEquals(Array.from(fake.requests[0].prefix!), [97, 98]);
    assertEquals(fake.requests[0].steps, undefined);
    assertEquals(frames.length, 1);
    assertEquals(frames[0].tokens, [97, 98, 120, 120, 120, 120, 120, 120]);
    assertEquals(frames[0].forwardPasses, 1);
  }
  // Steps and blanks are a denoiser's: refused in one line, naming it.
  const steps = await refusal(fakeModel("none"), { steps: 4 });
  assertEquals([steps.status, steps.message], [
    400,
    "steps sets a denoiser's unmasking steps; the fake-none model generates by its own generator, which takes none: leave steps out, got 4",
  ]);
  const blanks = await refusal(fakeModel("none"), {
    tokens: [97, 98, 99, 100, 101, 102, 103, 104],
  });
  assertEquals([blanks.status, blanks.message], [
    400,
    "Model fake-none does not fill blanks: send a prompt instead of tokens",
  ]);
});

Deno.test("generateFrames() starts a causal model's row with its start token (0 when its process names none), the prompt after it and zeros; the start and the prompt are given", async () => {
  const withStart = await run(fakeModel("causal", { start: 256 }), {
    prompt: "ab",
  });
  assertEquals(withStart.start, {
    model: "fake-causal",
    tokens: [256, 97, 98, 0, 0, 0, 0, 0],
    given: [0, 1, 2],
    steps: 5,
    engine: "fake",
  });
  assertEquals(withStart.frames.map((f) => f.step), [1, 2, 3, 4, 5]);
  const bare = await run(fakeModel("causal"), {});
  assertEquals(bare.start.tokens, [0, 0, 0, 0, 0, 0, 0, 0]);
  assertEquals([bare.start.given, bare.start.steps], [[0], 7]);
  const noStart = await run(fakeModel("causal"), { prompt: "xyz" });
  assertEquals(noStart.start.tokens, [0, 120, 121, 122, 0, 0, 0, 0]);
  assertEquals([noStart.start.given, noStart.start.steps], [[0, 1, 2, 3], 4]);
});

Deno.test("generateFrames() refuses a blank-filling row with a 400 naming the fault: a causal model's, one not of the model's length, an id at the vocabulary's size, one with no blank; it keeps the ids given", async () => {
  const row = [97, MASK, 98, MASK, MASK, 99, MASK, MASK];
  const cases: [LoadedModel, number[], string][] = [
    [
      fakeModel("causal"),
      row,
      "Model fake-causal does not fill blanks: send a prompt instead of tokens",
    ],
    [
      fakeModel("unmasking"),
      row.slice(1),
      "tokens must be a row of 8 ids (the model's context), got 7",
    ],
    [
      fakeModel("unmasking"),
      [...row.slice(0, 7), 260],
      "tokens must be ids below 260",
    ],
    [
      fakeModel("unmasking"),
      [97, 98, 99, 100, 101, 102, 103, 104],
      "tokens hold no blank: put the mask id 259 where tokens should be filled",
    ],
  ];
  for (const [loaded, tokens, message] of cases) {
    const e = await refusal(loaded, { tokens });
    assertEquals([e.status, e.message], [400, message]);
  }
  const model = fakeModel("unmasking");
  const { start, frames } = await run(model, { tokens: row, steps: 5 });
  assertEquals(start.tokens, row);
  assertEquals(start.given, [0, 2, 5]);
  assertEquals(Array.from(model.requests[0].prompt!), row);
  for (const f of frames) {
    assertEquals([f.tokens[0], f.tokens[2], f.tokens[5]], [97, 98, 99]);
  }
  assertEquals(frames.at(-1)!.tokens.includes(MASK), false);
  // The highest id a row may hold is the vocabulary's last.
  const top = await run(fakeModel("unmasking"), {
    tokens: [...row.slice(0, 7), 259],
    steps: 1,
  });
  assertEquals(top.start.given, [0, 2, 5]);
});

Deno.test("generateFrames() refuses with 400: a prompt the row cannot hold, steps past T, confidence for block unmasking, cached for a time-conditioned model", async () => {
  const cases: [LoadedModel, Record<string, unknown>, string][] = [
    [
      fakeModel("causal"),
      { prompt: "abcdefg" },
      "The prompt is 7 tokens; the causal model's row of 8 takes at most 6 so that something is generated",
    ],
    [
      fakeModel("unmasking"),
      { steps: 51 },
      "steps must be at most the process's T = 50, got 51",
    ],
    [
      fakeModel("block"),
      { steps: 51 },
      "steps must be at most the process's T = 50 (per block), got 51",
    ],
    [
      fakeModel("block"),
      { sampler: "confidence" },
      "Model fake-block unmasks each block ancestrally: sampler must be ancestral or cached, got confidence",
    ],
    [
      fakeModel("unmasking", { timeConditioned: true }),
      { sampler: "cached" },
      "sampler cached needs a model that ignores t; this one is time-conditioned",
    ],
  ];
  for (const [loaded, body, message] of cases) {
    const e = await refusal(loaded, body);
    assertEquals([e.status, e.message], [400, message]);
  }
  // At T itself, and cached for a model that ignores t, it runs.
  assertEquals(
    (await run(fakeModel("unmasking"), { steps: 50 })).frames.length,
    50,
  );
  const cached = fakeModel("unmasking");
  await run(cached, { sampler: "cached", steps: 2 });
  assertEquals(cached.requests[0].cache, true);
});

Deno.test("a frame's seconds, tokens per second and rows per second read the clock: an unmasking model's, a causal one's, and none at 0 s", async () => {
  await withClock(async (clock) => {
    // Step 1 at 0 s (no time passed: rates 0, not infinite), then 0.5, 1.5, 1.75 s.
    const at = [0, 500, 1500, 1750];
    const denoiser = fakeModel("unmasking", {
      tick: (s) => (clock.ms = 1_000_000 + at[s - 1]),
    });
    const { frames } = await run(denoiser, { prompt: "ab", steps: 4 });
    assertEquals(frames.map((f) => f.elapsed), [0, 0.5, 1.5, 1.75]);
    assertEquals([frames[0].tokensPerSecond, frames[0].batchesPerSecond], [
      0,
      0,
    ]);
    for (const f of frames.slice(1)) {
      const generated = f.tokens.slice(2).filter((x) => x !== MASK).length;
      near(f.tokensPerSecond, generated / f.elapsed, `tokens/s at ${f.step}`);
      near(f.batchesPerSecond, f.step / 4 / f.elapsed, `rows/s at ${f.step}`);
    }
    near(frames[3].tokensPerSecond, 6 / 1.75, "all 6 tokens");
    near(frames[3].batchesPerSecond, 1 / 1.75, "one row");
    clock.ms = 2_000_000;
    const causal = fakeModel("causal", {
      tick: (s) => (clock.ms = 2_000_000 + 250 * s),
    });
    const c = await run(causal, {});
    assertEquals(c.frames.map((f) => f.elapsed), [
      0.25,
      0.5,
      0.75,
      1,
      1.25,
      1.5,
      1.75,
    ]);
    for (const f of c.frames) {
      near(f.tokensPerSecond, f.step / f.elapsed, `tokens/s at ${f.step}`);
      near(f.batchesPerSecond, f.step / 7 / f.elapsed, `rows/s at ${f.step}`);
    }
  });
});

Deno.test("a block generation's rows per second count the blocks it makes, not those its prompt fills", async () => {
  await withClock(async (clock) => {
    const block = fakeModel("block", {
      tick: () => (clock.ms += 100),
    });
    // Blocks of 4 of a row of 8; the prompt fills block 0 whole and 1 in part.
    const { start, frames } = await run(block, { prompt: "abcde", steps: 2 });
    assertEquals([start.steps, start.blockSize, start.stepsPerBlock], [
      4,
      4,
      2,
    ]);
    assertEquals(frames.map((f) => f.step), [3, 4]);
    assertEquals(frames.map((f) => f.elapsed), [0.1, 0.2]);
    near(frames[0].batchesPerSecond, 0.5 / 0.1, "half the row's work");
    near(frames[1].batchesPerSecond, 1 / 0.2, "the whole row");
    near(frames[1].tokensPerSecond, 3 / 0.2, "3 tokens");
    // No prompt: every block's steps count.
    const whole = await run(
      fakeModel("block", { tick: () => (clock.ms += 100) }),
      {
        steps: 2,
      },
    );
    assertEquals(whole.frames.map((f) => f.step), [1, 2, 3, 4]);
    assertEquals(whole.frames[0].tokens.slice(0, 2), [97, 98]);
    whole.frames.forEach((f, i) => {
      near(f.batchesPerSecond, (i + 1) / 4 / f.elapsed, `rows/s at ${f.step}`);
      const generated = f.tokens.filter((x) => x !== MASK).length;
      near(f.tokensPerSecond, generated / f.elapsed, `tokens/s at ${f.step}`);
    });
  });
});

Deno.test("a device generator that reports no step gives one frame at the end: the whole row, its passes, its rates over the clock", async () => {
  await withClock(async (clock) => {
    const device = fakeModel("unmasking", {
      stepless: true,
      tick: (s) => s === -1 && (clock.ms += 2000),
    });
    const { start, frames } = await run(device, { prompt: "ab", steps: 4 });
    assertEquals(start.steps, 4);
    assertEquals(frames.length, 1);
    const [f] = frames;
    assertEquals([f.step, f.steps, f.forwardPasses, f.elapsed], [4, 4, 7, 2]);
    assertEquals(f.tokens.slice(0, 2), [97, 98]);
    assertEquals(f.tokens.length, LENGTH);
    assertEquals(f.tokens.includes(MASK), false);
    assertEquals([f.tokensPerSecond, f.batchesPerSecond], [3, 0.5]);
  });
});

Deno.test("GenerationService's default bounds: 4 generations running over all models, 4 waiting per model, 4 models kept loaded", async () => {
  const released: number[] = [];
  const loader: ModelLoader = (_dir, seed) =>
    Promise.resolve({
      ...fakeModel("unmasking"),
      placed: {
        model: {} as never,
        engine: "fake",
        dispose: () => released.push(seed),
      },
    });
  const service = new GenerationService(loader);
  const signal = new AbortController().signal;
  const status = (p: Promise<unknown>) =>
    p.then(() => 200, (e) => (e instanceof HttpError ? e.status : 500));
  const turns = [];
  for (const k of ["a", "b", "c", "d"]) {
    turns.push(await service.acquire(k, signal));
  }
  assertEquals(await status(service.acquire("e", signal)), 429);
  const waiting = [1, 2, 3, 4].map(() => service.acquire("a", signal));
  assertEquals(await status(service.acquire("a", signal)), 429);
  assertEquals(service.refused, 2);
  for (const t of turns) t();
  for (const w of waiting) (await w)();
  assertEquals(service.running, 0);
  const dir = await Deno.makeTempDir();
  try {
    for (const seed of [0, 1, 2, 3]) {
      await service.model(dir, seed, "d3pm");
      await sleep(2);
    }
    await sleep(5);
    assertEquals(released, []);
    await service.model(dir, 4, "d3pm");
    await sleep(5);
    assertEquals(released, [0]);
    await service.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("greedy's probe of the forward pass is the sampler's call, one row of masks at t = 1: an engine that takes only that shape and answers with a promise is refused, one answering at once is not", async () => {
  const strict = (async: boolean) => {
    const shapes: number[][] = [];
    const loaded = fakeModel("unmasking");
    loaded.placed = {
      model: {
        timeConditioned: false,
        forward: (x: tf.Tensor, o: { t: tf.Tensor }) => {
          shapes.push([...x.shape, ...o.t.shape]);
          if (x.shape.join() !== `1,${LENGTH}` || o.t.shape.join() !== "1") {
            throw new Error(`Cannot run on shape ${x.shape}`);
          }
          const out = tf.zeros([1, LENGTH, 260]);
          return async ? Promise.resolve(out) : out;
        },
      } as never,
      engine: "webgpu: a test adapter",
      dispose() {},
    };
    return { loaded, shapes };
  };
  await tf.setBackend("cpu");
  const before = tf.memory().numTensors;
  const device = strict(true);
  const e = await refusal(device.loaded, { temperature: 0, steps: 2 });
  assertEquals(e.status, 400);
  assert(
    e.message.startsWith(
      "temperature 0 (greedy) unmasks in the JavaScript sampler",
    ),
    e.message,
  );
  assertEquals(device.shapes, [[1, LENGTH, 1]]);
  const host = strict(false);
  assertEquals(
    (await run(host.loaded, { temperature: 0, steps: 2 })).frames.length,
    2,
  );
  assertEquals(host.shapes, [[1, LENGTH, 1]]);
  assertEquals(tf.memory().numTensors, before);
});

Deno.test("greedy on a model with its own generator is its generator's to take: no probe of the forward pass, no refusal naming the JavaScript sampler, even on an engine that answers with a promise", async () => {
  const fake = fakeModel("none");
  let probes = 0;
  fake.placed = {
    model: {
      timeConditioned: false,
      forward: () => (probes++, Promise.resolve(tf.zeros([1, LENGTH, 260]))),
    } as never,
    engine: "webgpu: a test adapter",
    dispose() {},
  };
  const { frames } = await run(fake, { temperature: 0, prompt: "ab" });
  assertEquals(probes, 0, "probed the forward pass with mask id 0");
  assertEquals(fake.requests[0].temperature, 0);
  assertEquals(frames.at(-1)!.tokens, [97, 98, 120, 120, 120, 120, 120, 120]);
});

Deno.test("generateFrames() asks the model for the sampler named: confidence unmasks by confidence, ancestral and cached ancestrally, cached alone with the cache", async () => {
  const asked: Record<string, unknown> = {};
  for (const sampler of ["ancestral", "cached", "confidence"]) {
    const model = fakeModel("unmasking");
    await run(model, { sampler, steps: 2 });
    const { strategy, cache, steps } = model.requests[0];
    asked[sampler] = { strategy, cache, steps };
  }
  assertEquals(asked, {
    ancestral: { strategy: "ancestral", cache: false, steps: 2 },
    cached: { strategy: "ancestral", cache: true, steps: 2 },
    confidence: { strategy: "confidence", cache: false, steps: 2 },
  });
  const block = fakeModel("block");
  await run(block, { sampler: "cached", steps: 2 });
  assertEquals([block.requests[0].strategy, block.requests[0].cache], [
    undefined,
    true,
  ]);
});

Deno.test("generateFrames() left by its consumer after a frame returns only once the model's generation has stopped, at its next step", async () => {
  const model = fakeModel("unmasking");
  let settled = false;
  const generate = model.contestant.generate.bind(model.contestant);
  model.contestant = {
    ...model.contestant,
    generate: (p, m, r) =>
      generate(p, m, r).finally(() => {
        settled = true;
      }),
  } as Contestant;
  const input = parseGenerationInput(
    { run: "r", model: "x", steps: 6 },
    DEFAULT_LIMITS,
  );
  const leave = new AbortController();
  const steps: number[] = [];
  for await (const e of generateFrames(model, input, leave.signal)) {
    if ("frame" in e) {
      steps.push(e.frame.step);
      leave.abort();
      break;
    }
  }
  assertEquals(settled, true, "the generation still ran after the return");
  assertEquals(steps, [1]);
});
