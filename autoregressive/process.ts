/**
 * The autoregressive process as one object, the peer of masked diffusion:
 * its loss, its exact likelihood, its sampler and its JSON description.
 *
 * @module
 */
import type {
  CausalGenerator,
  CausalLM,
  GenerateOptions,
  GenerateResult,
  GenerativeProcess,
  NllEstimate,
  Prng,
  Scalar,
  TermScorer,
  TokenBatch,
  WeightedTokens,
} from "@d3pm/core";
import { causalLmLoss, causalNll } from "./loss.ts";
import { type ArStep, generate } from "./generate.ts";

/** Options of {@linkcode Autoregressive.sample}: a prompt and progress besides the shared ones. */
export interface ArSampleOptions extends GenerateOptions {
  /** Ids every row continues after the start token (a prompt). */
  prefix?: ArrayLike<number>;
  /** Called after each generated token. */
  onStep?: (s: ArStep) => unknown;
}

/** The description of an autoregressive process (its `toJSON()`). */
export interface AutoregressiveSpec {
  /** Always `autoregressive`. */
  kind: "autoregressive";
  /** The token every generated row starts with (e.g. BOS). */
  start: number;
  /** Padding id: never scored, never drawn. */
  padId?: number;
  /** Further ids never drawn (e.g. the mask). */
  suppress?: number[];
  /**
   * Only ids below it are the model's outputs: scoring's softmax runs over
   * them, so rows above (an imported GPT-2's added special rows) carry no
   * probability. Absent: every id is an output.
   */
  outputs?: number;
  /**
   * Targets scored as another id, `[from, to]` pairs: an imported GPT-2's
   * `<|bos|>` and `<|eos|>` as its `<|endoftext|>`.
   */
  alias?: [number, number][];
}

/** The autoregressive process: a {@linkcode GenerativeProcess} of causal models. */
export interface Autoregressive extends GenerativeProcess<CausalLM> {
  /** Its description. */
  readonly spec: AutoregressiveSpec;
  /** Always true: the NLL is exact. */
  readonly exact: true;
  /** Next-token cross-entropy. */
  loss(
    model: CausalLM,
    batch: TokenBatch,
    options?: { prng?: Prng; training?: boolean },
  ): Scalar;
  /** Next-token cross-entropy as weighted terms (every target weighs 1/n, as in `causalLmLoss`). */
  lossTerms(batch: TokenBatch, options?: { prng?: Prng }): WeightedTokens;
  /** Exact NLL; needs no randomness. */
  score(
    model: CausalLM | TermScorer,
    x0: TokenBatch,
    options?: { prng?: Prng },
  ): Promise<NllEstimate>;
  /** KV-cached generation from the start token (and a prefix, if given). */
  sample(
    model: CausalLM | CausalGenerator,
    options: ArSampleOptions,
  ): Promise<GenerateResult>;
  /** The spec. */
  toJSON(): AutoregressiveSpec;
}

/**
 * The autoregressive process. `autoregressive(p.toJSON())` rebuilds `p`.
 *
 * @param spec The start token, padding and suppressed ids.
 * @returns The process.
 * @throws {RangeError} On a missing or malformed field, or an unknown key.
 *
 * @example
 * ```ts
 * import { autoregressive } from "@d3pm/autoregressive";
 * import { assertEquals } from "@std/assert";
 * const ar = autoregressive({ kind: "autoregressive", start: 1, padId: 0 });
 * assertEquals(autoregressive(ar.toJSON()).toJSON(), ar.toJSON());
 * assertEquals(ar.exact, true);
 * ```
 */
export function autoregressive(spec: AutoregressiveSpec): Autoregressive {
  const s = checkSpec(spec);
  const suppress = [
    ...(s.padId !== undefined ? [s.padId] : []),
    ...(s.suppress ?? []),
  ];
  return {
    name: "ar",
    spec: s,
    exact: true,
    loss: (model, batch, options = {}) =>
      causalLmLoss(model, batch, { training: options.training }),
    lossTerms: (batch) => causalTerms(batch),
    score: (model, x0) =>
      causalNll(model, x0, {
        padId: s.padId,
        outputs: s.outputs,
        alias: s.alias,
      }),
    async sample(model, options) {
      const tokens = await generate(model, {
        ...options,
        start: s.start,
        suppress: [...suppress, ...(options.suppress ?? [])],
      });
      // One decode call per drawn token (the prompt goes in with the first).
      const given = options.prefix?.length ?? 0;
      return { tokens, forwardPasses: options.length - 1 - given };
    },
    toJSON: () => ({ ...s }),
  };
}

function causalTerms(batch: TokenBatch): WeightedTokens {
  const { tokens, batchSize: b, length: l } = batch;
  if (tokens.length !== b * l || l < 2) {
    throw new RangeError(
      `lossTerms: expected ${b} × ${l} ids (length ≥ 2), got ${tokens.length}`,
    );
  }
  const t = l - 1, n = b * t;
  const inputs = new Int32Array(n), targets = new Int32Array(n);
  for (let r = 0; r < b; r++) {
    for (let i = 0; i < t; i++) {
      inputs[r * t + i] = tokens[r * l + i];
      targets[r * t + i] = tokens[r * l + i + 1];
    }
  }
  return {
    rows: b,
    length: t,
    inputs,
    targets,
    weights: new Float32Array(n).fill(1 / n),
  };
}

const KEYS = new Set([
  "kind",
  "start",
  "padId",
  "suppress",
  "outputs",
  "alias",
]);

function checkSpec(spec: AutoregressiveSpec): AutoregressiveSpec {
  const fail = (what: string): never => {
    throw new RangeError(`Invalid autoregressive process: ${what}`);
  };
  if (typeof spec !== "object" || spec === null) fail("expected an object");
  for (const k of Object.keys(spec)) {
    if (!KEYS.has(k)) {
      fail(`unknown key "${k}"; accepted: ${[...KEYS].join(", ")}`);
    }
  }
  if (spec.kind !== "autoregressive") {
    fail(`kind must be "autoregressive", got ${JSON.stringify(spec.kind)}`);
  }
  const id = (k: string, v: unknown) => {
    if (!Number.isInteger(v) || (v as number) < 0) {
      fail(`${k} must be a token id (integer ≥ 0), got ${JSON.stringify(v)}`);
    }
  };
  id("start", spec.start);
  if (spec.padId !== undefined) id("padId", spec.padId);
  if (spec.padId === spec.start) {
    // Every row starts with it, a pad is never drawn, and a start token
    // inside a row (a packed corpus's next BOS) would go unscored.
    fail(`padId ${spec.padId} must differ from start ${spec.start}`);
  }
  if (spec.suppress !== undefined) {
    if (!Array.isArray(spec.suppress)) fail("suppress must be an array of ids");
    spec.suppress.forEach((v) => id("suppress[]", v));
  }
  if (spec.outputs !== undefined) {
    id("outputs", spec.outputs);
    if (spec.outputs < 1) fail("outputs must be at least 1");
  }
  if (spec.alias !== undefined) {
    if (
      !Array.isArray(spec.alias) ||
      !spec.alias.every((p) => Array.isArray(p) && p.length === 2)
    ) {
      fail("alias must be an array of [from, to] id pairs");
    }
    spec.alias.forEach(([a, b]) => {
      id("alias[][0]", a);
      id("alias[][1]", b);
    });
  }
  return {
    kind: "autoregressive",
    start: spec.start,
    ...(spec.padId !== undefined ? { padId: spec.padId } : {}),
    ...(spec.suppress ? { suppress: [...spec.suppress] } : {}),
    ...(spec.outputs !== undefined ? { outputs: spec.outputs } : {}),
    ...(spec.alias
      ? { alias: spec.alias.map(([a, b]) => [a, b] as [number, number]) }
      : {}),
  };
}
