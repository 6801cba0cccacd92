/**
 * The autoregressive objective and its exact likelihood: next-token
 * cross-entropy, averaged for training and summed for evaluation.
 *
 * @module
 */
import {
  checkModelFits,
  isTermScorer,
  type LanguageModel,
  type NllEstimate,
  type Scalar,
  type Tensor1D,
  type Tensor2D,
  type Tensor3D,
  type TermScorer,
  type TokenBatch,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { sparseSoftmaxCrossEntropy } from "@d3pm/backend/fused-ops";

function checkBatch(
  batch: TokenBatch,
  model: object,
  who: string,
): void {
  const { tokens, batchSize: b, length: l } = batch;
  if (tokens.length !== b * l || l < 2) {
    throw new RangeError(
      `${who}: expected ${b} × ${l} ids (length ≥ 2), got ${tokens.length}`,
    );
  }
  // An id past the model's vocabulary failed in tfjs with a raw GatherV2
  // error (inputs) or scored as probability 0 (targets).
  const v = (model as { config?: { vocabSize?: number } }).config?.vocabSize;
  if (v === undefined) return;
  for (let i = 0; i < tokens.length; i++) {
    const id = tokens[i];
    if (!(Number.isInteger(id) && id >= 0 && id < v)) {
      throw new RangeError(
        `${who}: id ${id} at index ${i} of the batch is not a token id: expected an integer in [0, ${v}) (the model's vocabSize)`,
      );
    }
  }
}

/**
 * Mean next-token cross-entropy (nats per token) of a causal model on a batch
 * of blocks: positions `0..L−2` predict tokens `1..L−1`.
 *
 * @param model A causal model.
 * @param batch `batchSize × length` ids.
 * @param options `training` (dropout on; default true).
 * @returns The loss, a scalar tensor.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import type { LanguageModel, Tensor2D, Tensor3D } from "@d3pm/core";
 * import { causalLmLoss } from "@d3pm/autoregressive";
 * import { assertAlmostEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const uniform: LanguageModel = {
 *   config: { kind: "causal", vocabSize: 10, contextLength: 8 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => tf.zeros([...x.shape, 10]) as Tensor3D,
 *   dispose() {},
 * };
 * const loss = causalLmLoss(uniform, { tokens: Int32Array.of(1, 2, 3, 4), batchSize: 1, length: 4 });
 * assertAlmostEquals(loss.dataSync()[0], Math.log(10), 1e-5);
 * ```
 */
export function causalLmLoss(
  model: LanguageModel,
  batch: TokenBatch,
  options: { training?: boolean } = {},
): Scalar {
  checkBatch(batch, model, "causalLmLoss");
  checkModelFits(model, { kind: "causal" }, "causalLmLoss");
  const { batchSize: b, length: l } = batch;
  return tf.tidy(() => {
    const x = tf.tensor2d(batch.tokens, [b, l], "int32");
    const logits = model.forward(x.slice([0, 0], [b, l - 1]) as Tensor2D, {
      training: options.training ?? true,
    });
    const [, t, v] = logits.shape;
    const losses = sparseSoftmaxCrossEntropy(
      tf.reshape(logits, [b * t, v]) as Tensor2D,
      tf.reshape(x.slice([0, 1], [b, l - 1]), [-1]) as Tensor1D,
    ); // [B·(L−1)], one fused kernel each way on blas
    return tf.mean(losses) as Scalar;
  });
}

/**
 * Exact NLL of a batch under a causal model: every row predicts its tokens
 * 2..L from the ones before (the first token has no context and is not
 * scored); padding targets are not counted.
 *
 * With `outputs`, the softmax runs over ids `0..outputs−1` only (the rows
 * above carry no probability; a target among them scores +∞), and `alias`
 * scores a target as another id: an imported GPT-2 scores the project's
 * `<|bos|>`/`<|eos|>` as its `<|endoftext|>` over its own 50,257 outputs.
 * These scores read the model's logits from its `forward` (an engine's
 * asynchronous one too), not a `TermScorer`'s losses over every id.
 *
 * @param model A causal model.
 * @param x0 The rows.
 * @param options The padding id; the outputs and target aliases.
 * @returns Nats per scored token (exact: stderr 0) and the count.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import type { LanguageModel, Tensor2D, Tensor3D } from "@d3pm/core";
 * import { causalNll } from "@d3pm/autoregressive";
 * import { assertAlmostEquals, assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const uniform: LanguageModel = {
 *   config: { kind: "causal", vocabSize: 4, contextLength: 8 },
 *   timeConditioned: false,
 *   forward: (x: Tensor2D) => tf.zeros([...x.shape, 4]) as Tensor3D,
 *   dispose() {},
 * };
 * const x0 = { tokens: Int32Array.of(0, 1, 2, 0, 3, 3), batchSize: 2, length: 3 };
 * const est = await causalNll(uniform, x0);
 * assertEquals(est.tokens, 4);
 * assertAlmostEquals(est.nats, Math.log(4), 1e-6);
 * // Three outputs, id 3 scored as id 2: a uniform softmax over three.
 * const three = await causalNll(uniform, x0, { outputs: 3, alias: [[3, 2]] });
 * assertAlmostEquals(three.nats, Math.log(3), 1e-6);
 * ```
 */
export async function causalNll(
  model: LanguageModel | TermScorer,
  x0: TokenBatch,
  options: {
    padId?: number;
    outputs?: number;
    alias?: readonly (readonly [number, number])[];
  } = {},
): Promise<NllEstimate> {
  checkBatch(x0, model, "causalNll");
  // A bidirectional model sees the target: its score is no likelihood.
  checkModelFits(model, { kind: "causal" }, "causalNll");
  const { batchSize: n, length: l } = x0;
  const { outputs, alias } = options;
  const ids = x0.tokens;
  // The ids as targets: each read as its alias (the inputs stay).
  let read = ids;
  if (alias?.length) {
    const to = new Map(alias.map(([a, b]) => [a, b]));
    read = Int32Array.from(ids, (id) => to.get(id) ?? id);
  }
  const weights = new Float32Array(n * (l - 1));
  let tokens = 0;
  for (let r = 0; r < n; r++) {
    for (let i = 1; i < l; i++) {
      const w = x0.tokens[r * l + i] === options.padId ? 0 : 1;
      weights[r * (l - 1) + i - 1] = w;
      tokens += w;
    }
  }
  if (tokens === 0) {
    // Else 0 nats over 0 tokens read as a perfect score (perplexity 1).
    throw new RangeError(
      "causalNll: the batch has no tokens (all padding): expected at least one target other than the pad id",
    );
  }
  const restricted = outputs !== undefined;
  if (restricted && !("forward" in model)) {
    throw new RangeError(
      `causalNll: this scorer runs its softmax over every id and has no forward pass whose logits could leave out the ids from ${outputs} on`,
    );
  }
  if (isTermScorer(model) && !restricted) {
    // The same terms, summed on the scorer (one readback).
    const inputs = new Int32Array(n * (l - 1));
    const targets = new Int32Array(n * (l - 1));
    for (let r = 0; r < n; r++) {
      inputs.set(ids.subarray(r * l, (r + 1) * l - 1), r * (l - 1));
      targets.set(read.subarray(r * l + 1, (r + 1) * l), r * (l - 1));
    }
    const [rows] = await model.rowLosses([
      { rows: n, length: l - 1, inputs, targets, weights },
    ]);
    const nats = rows.reduce((s, x) => s + x, 0);
    return { nats: nats / tokens, stderr: 0, tokens };
  }
  if (restricted) {
    // A weighted target outside the outputs has probability 0.
    for (let r = 0; r < n; r++) {
      for (let i = 1; i < l; i++) {
        if (weights[r * (l - 1) + i - 1] > 0 && read[r * l + i] >= outputs) {
          return { nats: Infinity, stderr: 0, tokens };
        }
      }
    }
  }
  // An engine's forward pass (WebGPU's) may return a promise.
  const lm = model as unknown as {
    forward(
      x: Tensor2D,
      o: { training: boolean },
    ): Tensor3D | Promise<Tensor3D>;
  };
  const input = tf.tidy(() =>
    tf.tensor2d(ids, [n, l], "int32").slice([0, 0], [n, l - 1]) as Tensor2D
  );
  let all: Tensor3D;
  try {
    all = await lm.forward(input, { training: false });
  } finally {
    input.dispose();
  }
  let sum: Scalar;
  try {
    sum = tf.tidy(() => {
      const x = tf.tensor2d(read, [n, l], "int32");
      const logits = restricted
        ? all.slice([0, 0, 0], [n, l - 1, Math.min(outputs, all.shape[2])])
        : all;
      const logp = tf.logSoftmax(logits); // [n, L−1, V]
      const target = tf.oneHot(x.slice([0, 1], [n, l - 1]), logits.shape[2]);
      return logp.mul(target).sum(-1).mul(tf.tensor2d(weights, [n, l - 1]))
        .sum().neg() as Scalar;
    });
  } finally {
    all.dispose(); // the forward pass's logits, also when scoring throws
  }
  const nats = (await sum.data())[0];
  sum.dispose();
  return { nats: nats / tokens, stderr: 0, tokens };
}
