// Temperature 0 (greedy) in the playground, on real micro models (untrained
// weights, tfjs) through the server's route: each token the D3PM reveals is
// the brute-force argmax of its logits on the row before that step, each
// token the AR model draws the argmax given the tokens before it; a
// denoiser whose generator lacks a synchronous forward pass (the WebGPU
// engine's) is refused in one line before any event.
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertMatch } from "@std/assert";
import {
  AR,
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
  GenerationService,
  type LoadedModel,
} from "./mod.ts";
import { fakeLoader, fakeRun, readEvents } from "./_test_util.ts";

const LENGTH = 8;
const tokenizer = new ByteTokenizer();
const MASK = tokenizer.special.mask;
const config = resolveConfig({
  preset: "micro",
  models: "ar,d3pm",
  "block-length": LENGTH,
  "diffusion-steps": 20,
  "n-layer": 1,
  "d-model": 8,
  "n-head": 1,
  tokenizer: "byte",
});
const specials = {
  bos: tokenizer.special.bos,
  eos: tokenizer.special.eos,
  pad: tokenizer.special.pad,
  mask: MASK,
};

async function micro(
  c: Contestant,
  seed: number,
  engine: "tfjs" | "cpu" = "tfjs",
): Promise<LoadedModel> {
  await tf.setBackend("cpu");
  const model = new Transformer(c.modelConfig(config, tokenizer.vocabSize), {
    seed,
  });
  return {
    contestant: c,
    process: c.process(config, { tokenizer, specials }) as ContestantProcess,
    tokenizer,
    length: LENGTH,
    placed: await placeModel(model, engine, c.kind),
  };
}

/** The first largest logit of a position's row, `out` left out. */
function argmax(row: Float32Array, out: number[]): number {
  let best = -1;
  for (let v = 0; v < row.length; v++) {
    if (out.includes(v)) continue;
    if (best < 0 || row[v] > row[best]) best = v;
  }
  return best;
}

/** The model's logits on one row, [L × V]. */
function logitsOf(loaded: LoadedModel, row: number[]): Float32Array {
  const model = loaded.placed.model as Transformer;
  return tf.tidy(() =>
    model.forward(tf.tensor2d(row, [1, row.length], "int32"), {
      training: false,
    }).dataSync() as Float32Array
  );
}

async function server(models: Record<string, LoadedModel>) {
  const base = await Deno.realPath(await Deno.makeTempDir());
  await fakeRun(`${base}/r`, { models: Object.keys(models).join(",") });
  const generation = new GenerationService((_dir, _seed, kind) =>
    Promise.resolve(models[kind])
  );
  const handler = dashboardHandler({
    root: base,
    generation,
    pollMs: 20,
    keepAliveMs: 60_000,
  }, { page: { html: "<p>x</p>", js: "", css: "" } });
  const post = (body: Record<string, unknown>) =>
    handler(
      new Request("http://127.0.0.1/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ run: "r", ...body }),
      }),
    );
  return { base, generation, post };
}

async function frames(res: Response) {
  assertEquals(res.status, 200);
  const events = await readEvents(
    res,
    (ev) => ev.some((e) => e.event === "done" || e.event === "error"),
  );
  assertEquals(events.at(-1)!.event, "done", events.at(-1)!.data);
  return {
    start: JSON.parse(events[0].data),
    frames: events.filter((e) => e.event === "frame").map((e) =>
      JSON.parse(e.data) as { tokens: number[] }
    ),
  };
}

Deno.test("temperature 0 on the server is greedy: each token the D3PM reveals is the brute-force argmax of its logits on the row before that step, each the AR draws the argmax given the tokens before it, whatever the seed", async () => {
  const d3pm = await micro(D3PM as unknown as Contestant, 1);
  const ar = await micro(AR as unknown as Contestant, 2);
  const s = await server({ ar, d3pm });
  try {
    assertEquals(d3pm.placed.model.timeConditioned, false);
    const dSpec = d3pm.process.toJSON() as { padId?: number };
    const dOut = [MASK, ...(dSpec.padId !== undefined ? [dSpec.padId] : [])];
    for (const sampler of ["confidence", "ancestral"]) {
      const rows: number[][] = [];
      for (const rng of [1, 2]) {
        const run = await frames(
          await s.post({
            model: "d3pm",
            steps: 4,
            sampler,
            prompt: "ab",
            temperature: 0,
            rng,
          }),
        );
        let before: number[] = run.start.tokens;
        let revealed = 0;
        for (const f of run.frames) {
          const logits = logitsOf(d3pm, before);
          const V = logits.length / LENGTH;
          for (let i = 0; i < LENGTH; i++) {
            if (before[i] !== MASK || f.tokens[i] === MASK) continue;
            revealed++;
            assertEquals(
              f.tokens[i],
              argmax(logits.subarray(i * V, (i + 1) * V), dOut),
              `${sampler} rng ${rng} position ${i}`,
            );
          }
          before = f.tokens;
        }
        assertEquals(revealed, LENGTH - 2);
        assertEquals(before.slice(0, 2), [97, 98]);
        rows.push(before);
      }
      // By confidence nothing is drawn: the same row for both seeds.
      if (sampler === "confidence") assertEquals(rows[0], rows[1]);
    }
    const aSpec = ar.process.toJSON() as {
      padId?: number;
      suppress?: number[];
    };
    const aOut = [
      ...(aSpec.padId !== undefined ? [aSpec.padId] : []),
      ...(aSpec.suppress ?? []),
    ];
    const rows: number[][] = [];
    for (const rng of [1, 2]) {
      const run = await frames(
        await s.post({ model: "ar", prompt: "a", temperature: 0, rng }),
      );
      const row = run.frames.at(-1)!.tokens;
      // Causal: the logits at i − 1 on the final row see only the tokens before i.
      const logits = logitsOf(ar, row);
      const V = logits.length / LENGTH;
      assertEquals(row[1], 97);
      for (let i = 2; i < LENGTH; i++) {
        assertEquals(
          row[i],
          argmax(logits.subarray((i - 1) * V, i * V), aOut),
          `ar rng ${rng} position ${i}`,
        );
      }
      rows.push(row);
    }
    assertEquals(rows[0], rows[1]);
    assertEquals(
      [s.generation.completed, s.generation.failed],
      [6, 0],
    );
  } finally {
    d3pm.placed.dispose();
    ar.placed.dispose();
    await Deno.remove(s.base, { recursive: true });
  }
});

Deno.test("temperature 0 for a denoiser whose generator has no synchronous forward pass (the WebGPU engine's, or any forward returning a promise) is refused with a 400 in one line naming the alternatives, before any event; a causal model there, a small temperature and the CPU engine are not", async () => {
  const fake = fakeLoader(1);
  // As the WebGPU engine places a model: an asynchronous forward and its own sampler.
  const onDevice = async (
    kind: string,
    forward: () => unknown = async () => {},
  ): Promise<LoadedModel> => {
    const m = await fake("", 0, kind);
    return {
      ...m,
      contestant: kind === "ar"
        ? {
          ...m.contestant,
          kind: "ar",
          network: "causal",
          unmasking: undefined,
        }
        : m.contestant,
      placed: {
        model: {
          timeConditioned: false,
          forward,
          generateMasked: () => {},
        } as never,
        engine: "webgpu: the fused engine on a test adapter",
        dispose() {},
      },
    };
  };
  const s = await server({
    ar: await onDevice("ar"),
    d3pm: await onDevice("d3pm"),
  });
  try {
    const refused = await s.post({ model: "d3pm", steps: 2, temperature: 0 });
    assertEquals(refused.status, 400);
    assertEquals(
      (await refused.json()).error,
      "temperature 0 (greedy) unmasks in the JavaScript sampler, which reads a synchronous forward pass; the d3pm model here runs on webgpu, whose generator draws at a temperature > 0 only: give a small temperature such as 0.01, or serve with --engine tfjs or cpu",
    );
    assertEquals(
      [s.generation.invalid, s.generation.failed, s.generation.completed],
      [1, 0, 0],
    );
    for (
      const body of [
        { model: "d3pm", steps: 2, temperature: 0.01 },
        { model: "ar", temperature: 0 },
      ]
    ) {
      const run = await frames(await s.post(body));
      assert(run.frames.length > 0, JSON.stringify(body));
    }
    assertEquals(s.generation.completed, 2);
  } finally {
    await Deno.remove(s.base, { recursive: true });
  }
  // A plain (not async) function that returns a promise is refused alike,
  // before any event; it is called once per placed model, its promise
  // settled before the answer.
  let calls = 0, settled = 0;
  const plain = await onDevice("d3pm", function forward() {
    calls++;
    return new Promise<void>((r) => setTimeout(r, 20)).then(() => {
      settled++;
    });
  });
  const p = await server({ d3pm: plain });
  try {
    for (let i = 0; i < 2; i++) {
      const refused = await p.post({ model: "d3pm", steps: 2, temperature: 0 });
      assertEquals(refused.status, 400);
      assertMatch(
        (await refused.json()).error,
        /^temperature 0 \(greedy\) unmasks in the JavaScript sampler, .* runs on webgpu, /,
      );
    }
    assertEquals([calls, settled], [1, 1]);
    assertEquals(
      [p.generation.invalid, p.generation.failed, p.generation.completed],
      [2, 0, 0],
    );
  } finally {
    await Deno.remove(p.base, { recursive: true });
  }
  // The CPU engine's placed model reads the tfjs model's forward: accepted.
  const cpu = await micro(D3PM as unknown as Contestant, 1, "cpu");
  const c = await server({ d3pm: cpu });
  try {
    assert(cpu.placed.engine.startsWith("cpu"), cpu.placed.engine);
    const run = await frames(
      await c.post({ model: "d3pm", steps: 2, temperature: 0 }),
    );
    assert(!run.frames.at(-1)!.tokens.includes(MASK));
  } finally {
    cpu.placed.dispose();
    await Deno.remove(c.base, { recursive: true });
  }
});
