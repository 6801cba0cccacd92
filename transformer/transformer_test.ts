import { prng } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import {
  assert,
  assertAlmostEquals,
  assertEquals,
  assertNotEquals,
  assertThrows,
} from "@std/assert";
import { Transformer } from "./transformer.ts";
import { preset, validateConfig } from "./config.ts";
import { embeddingLookup } from "./_ops.ts";
import { normals } from "./_init.ts";
import {
  backendTest,
  maxAbsDiff,
  testBackends,
  tinyConfig,
  tokenBatch,
  useBackend,
} from "./_test_util.ts";

// Logits at positions that must not move are compared with this tolerance:
// masked attention weights are exactly 0, so on the reference backend they
// are bit-identical; a BLAS may block the sums differently.
const SAME = 1e-5;

function withToken(
  tokens: tf.Tensor2D,
  row: number,
  col: number,
  id: number,
): tf.Tensor2D {
  const values = tokens.arraySync();
  values[row][col] = id;
  return tf.tensor2d(values, tokens.shape, "int32");
}

// Cross-entropy summed over all positions, against fixed targets.
function lossOf(
  model: Transformer,
  tokens: tf.Tensor2D,
  targets: tf.Tensor2D,
  t?: tf.Tensor1D,
): tf.Scalar {
  return tf.tidy(() => {
    const logits = model.forward(tokens, { t });
    const oneHot = tf.oneHot(targets, model.config.vocabSize);
    return tf.losses.softmaxCrossEntropy(
      oneHot,
      logits,
      undefined,
      undefined,
      tf.Reduction.SUM,
    ) as tf.Scalar;
  });
}

// Replace every weight by N(0, std²) draws (so gradients and modulations are
// not tiny or zero, as they are at initialisation).
function randomiseWeights(model: Transformer, seed: number, std: number) {
  const rng = prng(seed);
  const weights = new Map<string, tf.Tensor>();
  for (const [name, v] of model.variables) {
    weights.set(name, tf.tensor(normals(rng, v.size, std), v.shape));
  }
  model.setWeights(weights);
  tf.dispose([...weights.values()]);
}

const backends = await testBackends();

for (const entry of backends) {
  const test = backendTest(entry);

  test("forward() of a causal model never lets a later token change earlier logits", () => {
    for (const positions of ["learned", "rotary"] as const) {
      const model = new Transformer(tinyConfig({ positions }), { seed: 1 });
      const tokens = tokenBatch(2, 10, 32);
      const base = model.forward(tokens);
      for (const col of [3, 9]) {
        const changed = withToken(tokens, 1, col, 31);
        const logits = model.forward(changed);
        const before = tf.slice(base, [0, 0, 0], [-1, col, -1]);
        const after = tf.slice(logits, [0, 0, 0], [-1, col, -1]);
        assert(maxAbsDiff(before, after) <= SAME, `${positions}: col ${col}`);
        const at = tf.slice(base, [1, col, 0], [1, 1, -1]);
        const atChanged = tf.slice(logits, [1, col, 0], [1, 1, -1]);
        assert(maxAbsDiff(at, atChanged) > 1e-4, "the changed position moves");
        tf.dispose([changed, logits, before, after, at, atChanged]);
      }
      tf.dispose([tokens, base]);
      model.dispose();
    }
  });

  test("forward() of the denoiser lets a later token change earlier logits", () => {
    for (const positions of ["learned", "rotary"] as const) {
      const model = new Transformer(
        tinyConfig({ kind: "bidirectional", positions }),
        { seed: 1 },
      );
      const tokens = tokenBatch(1, 10, 32);
      const changed = withToken(tokens, 0, 9, 31);
      const a = model.forward(tokens), b = model.forward(changed);
      const first = [
        tf.slice(a, [0, 0, 0], [1, 1, -1]),
        tf.slice(b, [0, 0, 0], [1, 1, -1]),
      ];
      assert(maxAbsDiff(first[0], first[1]) > 1e-5, positions);
      tf.dispose([tokens, changed, a, b, ...first]);
      model.dispose();
    }
  });

  test("alibi: 0 is the plain denoiser, a steep slope leaves each position only itself, causal models refuse it", () => {
    const base = tinyConfig({ kind: "bidirectional", positions: "rotary" });
    const plain = new Transformer(base, { seed: 1 });
    const zero = new Transformer(validateConfig({ ...base, alibi: 0 }), {
      seed: 1,
    });
    const steep = new Transformer(validateConfig({ ...base, alibi: 1e4 }), {
      seed: 1,
    });
    const mild = new Transformer(validateConfig({ ...base, alibi: 0.5 }), {
      seed: 1,
    });
    assertEquals(zero.config.alibi, undefined); // 0 is no bias at all
    assertEquals(
      validateConfig(JSON.parse(JSON.stringify(steep.config))).alibi,
      1e4,
    );
    const tokens = tokenBatch(1, 10, 32);
    const changed = withToken(tokens, 0, 9, 31);
    const firstMoves = (m: Transformer) => {
      const a = m.forward(tokens), b = m.forward(changed);
      const d = tf.tidy(() =>
        maxAbsDiff(
          tf.slice(a, [0, 0, 0], [1, 1, -1]),
          tf.slice(b, [0, 0, 0], [1, 1, -1]),
        )
      );
      tf.dispose([a, b]);
      return d;
    };
    const p = plain.forward(tokens), z = zero.forward(tokens);
    assertEquals(maxAbsDiff(p, z), 0);
    assert(firstMoves(plain) > 1e-5);
    assert(firstMoves(mild) > 1e-5); // a prior, not a mask
    assert(firstMoves(steep) <= SAME, "a slope of 1e4 sees nothing but itself");
    assertThrows(
      () => validateConfig({ ...tinyConfig(), alibi: 1 }),
      RangeError,
      "bidirectional models only",
    );
    assertThrows(
      () => validateConfig({ ...base, alibi: -1 }),
      RangeError,
      "alibi must be a number ≥ 0",
    );
    tf.dispose([tokens, changed, p, z]);
    for (const m of [plain, zero, steep, mild]) m.dispose();
  });

  test("alibiMode neighbours: heads 0 and 1 look at the left and right neighbour, so each layer widens what a position sees by one", () => {
    const base = tinyConfig({
      kind: "bidirectional",
      positions: "rotary",
      alibi: 1e4,
    });
    const symmetric = new Transformer(base, { seed: 1 });
    const neighbours = new Transformer(
      validateConfig({ ...base, alibiMode: "neighbours" }),
      { seed: 1 },
    );
    assertEquals(neighbours.config.alibiMode, "neighbours");
    assertEquals(
      validateConfig(JSON.parse(JSON.stringify(neighbours.config))),
      neighbours.config,
    );
    // "symmetric" is the default and is not stored.
    assertEquals(
      validateConfig({ ...base, alibiMode: "symmetric" }).alibiMode,
      undefined,
    );
    const tokens = tokenBatch(1, 10, 32);
    const changed = withToken(tokens, 0, 5, 31);
    // Which positions move when token 5 changes.
    const moved = (m: Transformer) => {
      const a = m.forward(tokens), b = m.forward(changed);
      const out = tf.tidy(() => {
        const d = tf.max(tf.abs(tf.sub(a, b)), [0, 2]).dataSync();
        return [...d].flatMap((x, i) => x > SAME ? [i] : []);
      });
      tf.dispose([a, b]);
      return out;
    };
    assertEquals(moved(symmetric), [5]); // a steep slope: only itself
    // Two layers, each reaching one neighbour on either side.
    assertEquals(moved(neighbours), [3, 4, 5, 6, 7]);
    const rejects = (o: Record<string, unknown>, message: string) =>
      assertThrows(
        () => validateConfig({ ...base, ...o }),
        RangeError,
        message,
      );
    rejects({ alibiMode: "left" }, 'alibiMode must be "symmetric" or');
    rejects({ alibiMode: "neighbours", alibi: 0 }, "needs alibi > 0");
    rejects(
      { alibiMode: "neighbours", nHead: 1 },
      "needs two heads or more",
    );
    tf.dispose([tokens, changed]);
    symmetric.dispose();
    neighbours.dispose();
  });

  test("time conditioning starts as the unconditioned model and matters once trained", () => {
    const seed = 5;
    const plain = new Transformer(tinyConfig({ kind: "bidirectional" }), {
      seed,
    });
    const timed = new Transformer(
      tinyConfig({ kind: "bidirectional", timeConditioning: true }),
      { seed },
    );
    const tokens = tokenBatch(2, 8, 32);
    const t1 = tf.tensor1d([0.05, 0.5]);
    const t2 = tf.tensor1d([0.95, 0.7]);
    const reference = plain.forward(tokens);
    const atInit = [
      timed.forward(tokens, { t: t1 }),
      timed.forward(tokens, { t: t2 }),
    ];
    // adaLN projections are zero at init: shift = scale = gate = 0.
    assert(maxAbsDiff(reference, atInit[0]) <= SAME);
    assert(maxAbsDiff(atInit[0], atInit[1]) <= SAME);
    // Give the adaLN projections weights: t now changes the output.
    for (const [name, v] of timed.variables) {
      if (name.includes(".ada.")) {
        v.assign(tf.tensor(normals(prng(name.length), v.size, 0.05), v.shape));
      }
    }
    const trained = [
      timed.forward(tokens, { t: t1 }),
      timed.forward(tokens, { t: t2 }),
    ];
    assert(maxAbsDiff(trained[0], trained[1]) > 1e-4);
    assertThrows(() => timed.forward(tokens), RangeError, "pass options.t");
    const wrong = tf.tensor1d([0.5]);
    assertThrows(
      () => timed.forward(tokens, { t: wrong }),
      RangeError,
      "t must have shape [2]",
    );
    // An unconditioned model ignores t, so callers may always pass it.
    const ignored = plain.forward(tokens, { t: t1 });
    assert(maxAbsDiff(ignored, reference) === 0);
    tf.dispose([
      tokens,
      t1,
      t2,
      reference,
      ...atInit,
      ...trained,
      wrong,
      ignored,
    ]);
    plain.dispose();
    timed.dispose();
  });

  test("the same seed gives the same weights, logits and dropout", () => {
    const config = tinyConfig({ dropout: 0.2, positions: "rotary" });
    const a = new Transformer(config, { seed: 7 });
    const b = new Transformer(config, { seed: 7 });
    const c = new Transformer(config, { seed: 8 });
    for (const [name, v] of a.variables) {
      assertEquals(v.dataSync(), b.variables.get(name)!.dataSync(), name);
    }
    assertNotEquals(
      a.variables.get("wte.weight")!.dataSync(),
      c.variables.get("wte.weight")!.dataSync(),
    );
    const tokens = tokenBatch(2, 6, 32);
    const eval1 = a.forward(tokens), eval2 = b.forward(tokens);
    assertEquals(eval1.dataSync(), eval2.dataSync());
    const train1 = a.forward(tokens, { training: true, prng: prng(3) });
    const train2 = b.forward(tokens, { training: true, prng: prng(3) });
    const train3 = a.forward(tokens, { training: true, prng: prng(4) });
    assertEquals(train1.dataSync(), train2.dataSync());
    assert(maxAbsDiff(train1, train3) > 1e-4, "another dropout seed differs");
    assert(maxAbsDiff(train1, eval1) > 1e-4, "dropout is active in training");
    tf.dispose([tokens, eval1, eval2, train1, train2, train3]);
    for (const m of [a, b, c]) m.dispose();
  });

  test("forward() and backward leak no tensors", () => {
    const model = new Transformer(
      tinyConfig({
        kind: "bidirectional",
        timeConditioning: true,
        positions: "rotary",
        dropout: 0.1,
      }),
      { seed: 2 },
    );
    const tokens = tokenBatch(2, 8, 32);
    const targets = tokenBatch(2, 8, 32, 1);
    const t = tf.tensor1d([0.25, 0.75]);
    const vars = model.trainableVariables();
    const step = () => {
      const { value, grads } = tf.variableGrads(() =>
        tf.tidy(() => {
          const logits = model.forward(tokens, { t, training: true });
          const oneHot = tf.oneHot(targets, 32);
          return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
        }), vars);
      tf.dispose([value, ...Object.values(grads)]);
      tf.dispose(model.forward(tokens, { t }));
    };
    step(); // warm-up: kernels may cache constants on first use
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      step();
      assertEquals(tf.memory().numTensors, before, `after step ${i + 1}`);
    }
    tf.dispose([tokens, targets, t]);
    model.dispose();
  });

  test("gradients match central finite differences", () => {
    // float32 central difference, eps 1e-2, on the summed cross-entropy of
    // a model with N(0, 0.3²) weights (so no gradient is trivially small):
    // truncation error O(eps²), rounding ~1e-7·|loss|/eps ≈ 1e-4. We require
    // |numeric − analytic| ≤ 1e-2·max(|numeric|, |analytic|) + 1e-3; on cpu
    // the largest gradient of each tensor agrees to ~1e-4 relative and the
    // worst absolute gap is ~2e-4.
    const EPS = 1e-2, REL = 1e-2, ABS = 1e-3;
    for (
      const overrides of [
        { kind: "causal", positions: "learned" },
        { kind: "bidirectional", positions: "rotary", timeConditioning: true },
      ] as const
    ) {
      const model = new Transformer(
        tinyConfig({
          ...overrides,
          nLayer: 1,
          vocabSize: 16,
          dModel: 8,
          dMlp: 16,
        }),
        { seed: 3 },
      );
      randomiseWeights(model, 11, 0.3);
      const tokens = tokenBatch(2, 5, 16);
      const targets = tokenBatch(2, 5, 16, 2);
      const t = overrides.kind === "bidirectional"
        ? tf.tensor1d([0.3, 0.8])
        : undefined;
      const { grads } = tf.variableGrads(
        () => lossOf(model, tokens, targets, t),
        model.trainableVariables(),
      );
      const byName = new Map<string, tf.Tensor>();
      for (const [name, v] of model.variables) byName.set(name, grads[v.name]);
      const names = [...model.variables.keys()].filter((n) =>
        /^(wte|wpe)\.weight|c_attn\.weight|attn\.c_proj\.weight|mlp\.c_fc\.bias|ln_1\.weight|ln_f\.bias|\.ada\.weight|time\.mlp\.c_fc\.weight/
          .test(n)
      );
      assert(names.length >= 6, names.join());
      for (const name of names) {
        const v = model.variables.get(name)!;
        const g = byName.get(name)!.dataSync();
        // The entry with the largest gradient, and one fixed entry.
        let top = 0;
        for (let i = 1; i < g.length; i++) {
          if (Math.abs(g[i]) > Math.abs(g[top])) top = i;
        }
        for (const index of new Set([top, Math.floor(g.length / 3)])) {
          const original = v.dataSync().slice();
          const lossAt = (delta: number) => {
            const values = original.slice();
            values[index] += delta;
            const tensor = tf.tensor(values, v.shape);
            v.assign(tensor);
            tensor.dispose();
            const loss = lossOf(model, tokens, targets, t);
            const out = loss.dataSync()[0];
            loss.dispose();
            return out;
          };
          const numeric = (lossAt(EPS) - lossAt(-EPS)) / (2 * EPS);
          const restore = tf.tensor(original, v.shape);
          v.assign(restore);
          restore.dispose();
          const analytic = g[index];
          const tol = REL * Math.max(Math.abs(numeric), Math.abs(analytic)) +
            ABS;
          assert(
            Math.abs(numeric - analytic) <= tol,
            `${overrides.kind} ${name}[${index}]: numeric ${numeric}, analytic ${analytic}`,
          );
        }
      }
      tf.dispose([tokens, targets, ...(t ? [t] : []), ...Object.values(grads)]);
      model.dispose();
    }
  });

  test("the embedding gradient paths agree with each other", () => {
    const table = tf.variable(
      tf.randomNormal([12, 4], 0, 1, "float32", 1),
    ) as tf.Variable<tf.Rank.R2>;
    const ids = tf.tensor1d([3, 0, 3, 11, 5, 3], "int32");
    const weights = tf.randomNormal([6, 4], 0, 1, "float32", 2);
    const gradFor = (path?: "segment-sum" | "scatter" | "one-hot") => {
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.mul(embeddingLookup(table, ids, path), weights)),
        [table],
      );
      return grads[table.name];
    };
    const auto = gradFor();
    const all = [
      gradFor("segment-sum"),
      gradFor("scatter"),
      gradFor("one-hot"),
    ];
    for (const g of all) assert(maxAbsDiff(auto, g) < 1e-5);
    // Row 3 gets three contributions, row 1 none.
    const expected3 = tf.tidy(() =>
      tf.sum(tf.gather(weights, tf.tensor1d([0, 2, 5], "int32")), 0)
    );
    const row3 = tf.slice(auto, [3, 0], [1, 4]);
    assert(maxAbsDiff(tf.reshape(row3, [4]), expected3) < 1e-5);
    assertEquals(
      tf.slice(auto, [1, 0], [1, 4]).dataSync(),
      new Float32Array(4),
    );
    tf.dispose([table, ids, weights, auto, ...all, expected3, row3]);
  });

  test("an optimiser lowers the loss through trainableVariables()", () => {
    const model = new Transformer(tinyConfig(), { seed: 4 });
    const tokens = tokenBatch(2, 8, 32);
    const targets = tokenBatch(2, 8, 32, 3);
    const optimizer = tf.train.adam(1e-2);
    const loss = () =>
      tf.tidy(() =>
        tf.losses.softmaxCrossEntropy(
          tf.oneHot(targets, 32),
          model.forward(tokens),
        ) as tf.Scalar
      );
    const first = loss();
    const start = first.dataSync()[0];
    for (let i = 0; i < 15; i++) {
      optimizer.minimize(loss, true, model.trainableVariables())?.dispose();
    }
    const last = loss();
    assert(
      last.dataSync()[0] < start - 0.5,
      `${start} → ${last.dataSync()[0]}`,
    );
    tf.dispose([tokens, targets, first, last]);
    optimizer.dispose();
    model.dispose();
  });
}

Deno.test("forward() rejects malformed tokens with one-line errors", async () => {
  await useBackend("cpu");
  const model = new Transformer(tinyConfig());
  const floats = tf.tensor2d([[1, 2]], [1, 2], "float32");
  const long = tokenBatch(1, 13, 32);
  const flat = tf.tensor1d([1, 2], "int32");
  assertThrows(
    () => model.forward(floats),
    RangeError,
    "tokens must be int32, got float32",
  );
  assertThrows(() => model.forward(long), RangeError, "T ≤ 12");
  assertThrows(
    () => model.forward(flat as unknown as tf.Tensor2D),
    RangeError,
    "rank-2 tensor [B, T], got shape [2]",
  );
  tf.dispose([floats, long, flat]);
  model.dispose();
});

Deno.test("the initialisation follows GPT-2", async () => {
  await useBackend("cpu");
  const config = tinyConfig({
    nLayer: 2,
    dModel: 64,
    nHead: 4,
    dMlp: 256,
    vocabSize: 64,
  });
  const model = new Transformer(config, { seed: 9 });
  const std = (name: string) =>
    tf.tidy(() =>
      Math.sqrt(tf.moments(model.variables.get(name)!).variance.dataSync()[0])
    );
  assertAlmostEquals(std("wte.weight"), 0.02, 0.002);
  assertAlmostEquals(std("h.0.attn.c_attn.weight"), 0.02, 0.002);
  assertAlmostEquals(std("h.1.mlp.c_proj.weight"), 0.02 / Math.sqrt(4), 0.001);
  assertEquals(
    new Set(model.variables.get("h.0.ln_1.weight")!.dataSync()),
    new Set([1]),
  );
  assertEquals(
    new Set(model.variables.get("h.0.mlp.c_fc.bias")!.dataSync()),
    new Set([0]),
  );
  model.dispose();
});

Deno.test("a disposed Transformer says so in every call instead of failing inside tfjs", () => {
  const why = "Cannot use the Transformer: the model was disposed";
  const config = { vocabSize: 16, nLayer: 1, dModel: 8, nHead: 2, dMlp: 16 };
  const causal = new Transformer(preset("tiny", config), { seed: 1 });
  const denoiser = new Transformer(
    preset("tiny", { ...config, kind: "bidirectional" }),
    { seed: 1 },
  );
  const x = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
  // Alive, they run.
  tf.dispose([causal.forward(x), denoiser.forward(x)]);
  const weights = new Map(
    [...causal.variables].map(([k, v]) => [k, v.clone() as tf.Tensor]),
  );
  causal.dispose();
  denoiser.dispose();
  assertThrows(() => causal.forward(x), Error, why);
  const cache = causal.createCache(1);
  assertThrows(() => causal.decode(x, cache), Error, why);
  cache.dispose();
  const blocks = denoiser.createCache(1);
  assertThrows(() => denoiser.decodeBlock(x, blocks), Error, why);
  blocks.dispose();
  assertThrows(() => causal.setWeights(weights), Error, why);
  assertThrows(() => causal.trainableVariables(), Error, why);
  causal.dispose(); // twice is harmless
  tf.dispose([x, ...weights.values()]);
});
