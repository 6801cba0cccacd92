/**
 * The Transformer: one pre-LayerNorm block (multi-head self-attention, GELU
 * MLP, residuals, dropout) shared by the causal decoder (AR) and the
 * bidirectional denoiser (D3PM), with optional adaLN time conditioning.
 *
 * @module
 */

import {
  type BlockLayout,
  type CausalLM,
  type ForwardOptions,
  type Prng,
  prng as seededPrng,
  type StoredTensor,
  type Tensor,
  type Tensor2D,
  type Tensor3D,
  type Variable,
} from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { type AlibiMode, type ModelConfig, validateConfig } from "./config.ts";
import { parameterShapes } from "./parameters.ts";
import { KVCache, type LayerKV } from "./kv_cache.ts";
import { drawWeights } from "./_init.ts";
import {
  applyRope,
  embeddingLookup,
  gelu,
  layerNorm,
  linear,
  modulate,
  ropeTables,
  timeFeatures,
} from "./_ops.ts";

/** Options of the {@linkcode Transformer} constructor. */
export interface TransformerOptions {
  /** Seed of the initial weights and the dropout stream (default 0). */
  seed?: number;
  /** A PRNG to draw them from instead of `seed`. */
  prng?: Prng;
  /**
   * Initial values instead of the random initialisation (e.g. from a
   * checkpoint): exactly the names and shapes of `parameterShapes(config)`.
   */
  weights?: ReadonlyMap<string, StoredTensor>;
}

/**
 * Options of {@linkcode Transformer.forward}: the contract's `t` (required
 * when the config has `timeConditioning`) and `training`, and more.
 */
export interface TransformerForwardOptions extends ForwardOptions {
  /** Source of dropout seeds (default: the model's own seeded stream). */
  prng?: Prng;
  /**
   * Compute logits at the last position only, giving [B, 1, V] (for
   * sampling without a cache: the head is the costliest matmul).
   */
  lastOnly?: boolean;
  /**
   * Block diffusion's attention (bidirectional models only; see
   * `BlockLayout`): with `clean`, the tokens are `[x_t ; x_0]` of `2L` and
   * the logits the noisy stream's `[B, L, V]`. Not with `lastOnly`, `shift`
   * or an attention window.
   */
  blocks?: BlockLayout;
}

// Added to attention scores of masked keys; finite so that no -∞ − (−∞)
// NaN can appear, and large enough that exp() underflows to exactly 0.
const MASKED = -1e9;

interface AttentionContext {
  /**
   * Added to the scores: `[T, P + T]` (causal), `[H, T, T]` per head (ALiBi),
   * or null (every key visible).
   */
  mask: tf.Tensor2D | tf.Tensor3D | null;
  /** RoPE tables for the new positions, each [T, headDim]. */
  rope: { cos: tf.Tensor2D; sin: tf.Tensor2D } | null;
  /** SiLU of the time embedding, [B, dTime], or null. */
  cond: tf.Tensor2D | null;
  /** Dropout, or the identity. */
  drop: (x: tf.Tensor) => tf.Tensor;
  /** Cached keys/values per layer (decoding), else undefined. */
  past?: (LayerKV | null)[];
  /** Filled with each layer's keys/values when `past` is given. */
  present?: LayerKV[];
}

/**
 * A GPT-2-style Transformer. `kind: "causal"` masks attention to earlier
 * positions (the AR decoder); `kind: "bidirectional"` attends everywhere (the
 * denoiser). Input and output embeddings are tied.
 *
 * The variables are created on the active tfjs backend; the class never
 * changes the backend.
 *
 * @example
 * ```ts
 * import * as tf from "@tensorflow/tfjs";
 * import { Transformer, validateConfig } from "@d3pm/transformer";
 * import { assertEquals } from "@std/assert";
 * await tf.setBackend("cpu");
 * const model = new Transformer(validateConfig({
 *   kind: "causal", vocabSize: 16, contextLength: 8, nLayer: 1, nHead: 2,
 *   dModel: 8, dMlp: 16, positions: "learned", timeConditioning: false,
 *   dTime: 8, dropout: 0,
 * }), { seed: 1 });
 * const tokens = tf.tensor2d([[1, 2, 3]], [1, 3], "int32");
 * const logits = model.forward(tokens);
 * assertEquals(logits.shape, [1, 3, 16]);
 * tf.dispose([tokens, logits]);
 * model.dispose();
 * ```
 */
export class Transformer implements CausalLM<KVCache> {
  /** The validated configuration. */
  readonly config: ModelConfig;
  /**
   * `forward` takes block diffusion's layout (`options.blocks`; a
   * bidirectional model's only — a causal one refuses it).
   */
  readonly blockAttention = true as const;
  /**
   * Every parameter by its GPT-2-scheme name, in canonical order (see
   * `parameterShapes`). All are trainable.
   */
  readonly variables: ReadonlyMap<string, Variable>;
  #dropoutPrng: Prng;
  #headDim: number;
  #disposed = false;
  /** ALiBi penalties by sequence length, computed once (the tensor is per call). */
  #alibi = new Map<number, Float32Array>();
  /** Block layouts' masks by length, block size and streams, computed once. */
  #blockMasks = new Map<string, Float32Array>();

  /**
   * Bidirectional models only: how many later positions each position may
   * attend to (`Infinity`, the default: all; 0: none, as a causal model).
   * Attention-mask annealing relaxes it from 0 to the context length while
   * a denoiser started from causal weights trains; it is not saved.
   *
   * @example
   * ```ts
   * import * as tf from "@tensorflow/tfjs";
   * import { preset, Transformer } from "@d3pm/transformer";
   * import { assertEquals, assertNotEquals } from "@std/assert";
   * await tf.setBackend("cpu");
   * const config = { vocabSize: 16, nLayer: 1, dModel: 8, nHead: 2, dMlp: 16 };
   * const causal = new Transformer(preset("tiny", config), { seed: 1 });
   * const denoiser = new Transformer(
   *   preset("tiny", { ...config, kind: "bidirectional" }),
   *   { weights: new Map([...causal.variables].map(([k, v]) => [k, { data: v.dataSync() as Float32Array, shape: v.shape }])) },
   * );
   * const x = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
   * const [a, b] = [causal.forward(x).arraySync(), denoiser.forward(x).arraySync()];
   * assertNotEquals(a, b); // position 0 sees the later ones
   * denoiser.attentionWindow = 0; // causal again
   * const c = denoiser.forward(x).arraySync();
   * assertEquals(c.flat(2).map((v) => v.toFixed(4)), a.flat(2).map((v) => v.toFixed(4)));
   * ```
   */
  attentionWindow: number = Infinity;

  /** Whether the logits depend on the diffusion time (adaLN conditioning). */
  get timeConditioned(): boolean {
    return this.config.timeConditioning;
  }

  /**
   * A freshly initialised model (GPT-2 initialisation, seeded).
   *
   * @param config The configuration; validated again here.
   * @param options The seed or PRNG.
   */
  constructor(config: ModelConfig, options: TransformerOptions = {}) {
    this.config = validateConfig(config);
    const rng = options.prng ?? seededPrng(options.seed ?? 0);
    // Drawn first, so the weights below do not depend on how much dropout
    // randomness is used later.
    this.#dropoutPrng = seededPrng(rng.nextUint32());
    this.#headDim = this.config.dModel / this.config.nHead;
    const shapes = parameterShapes(this.config);
    if (options.weights) checkWeights(options.weights, shapes);
    const values = options.weights ?? drawWeights(this.config, rng);
    const variables = new Map<string, tf.Variable>();
    for (const [name, shape] of shapes) {
      const initial = tf.tensor(values.get(name)!.data, shape, "float32");
      variables.set(name, tf.variable(initial, true));
      initial.dispose();
    }
    this.variables = variables;
  }

  /**
   * Logits for every position: `forward(tokens [B, T], { t? }) → [B, T, V]`.
   *
   * @param tokens Token ids, int32 [B, T] with 1 ≤ T ≤ contextLength.
   * @param options Time, training mode, dropout seeds, last position only.
   * @returns Logits [B, T, V] (or [B, 1, V] with `lastOnly`); the caller
   *   disposes them.
   *
   * @example
   * ```ts
   * import * as tf from "@tensorflow/tfjs";
   * import { preset, Transformer } from "@d3pm/transformer";
   * import { assertEquals } from "@std/assert";
   * await tf.setBackend("cpu");
   * const config = preset("tiny", {
   *   kind: "bidirectional", timeConditioning: true, vocabSize: 32,
   *   nLayer: 1, dModel: 16, nHead: 2, dMlp: 32, dTime: 8,
   * });
   * const model = new Transformer(config, { seed: 0 });
   * const tokens = tf.tensor2d([[5, 31, 7], [1, 2, 3]], [2, 3], "int32");
   * const t = tf.tensor1d([0.3, 0.9]);
   * const logits = model.forward(tokens, { t });
   * assertEquals(logits.shape, [2, 3, 32]);
   * tf.dispose([tokens, t, logits]);
   * model.dispose();
   * ```
   */
  forward(
    tokens: Tensor2D,
    options: TransformerForwardOptions = {},
  ): Tensor3D {
    const blocks = options.blocks;
    if (blocks) this.#checkBlocks(tokens, blocks, options);
    else this.#checkTokens(tokens, "forward", 0);
    const t = this.#checkTime(options.t, tokens.shape[0]);
    const rate = options.training ? this.config.dropout : 0;
    const seeds = options.prng ?? this.#dropoutPrng;
    return tf.tidy(() => {
      const length = tokens.shape[1];
      // Two streams share the positions 0..L−1.
      const span = blocks?.clean ? length / 2 : length;
      const twice = <T extends tf.Tensor>(z: T): T =>
        blocks?.clean ? tf.concat([z, z], 0) as T : z;
      const rope = this.config.positions === "rotary"
        ? ropeTables(0, span, this.#headDim)
        : null;
      const ctx: AttentionContext = {
        mask: blocks ? this.#blockMask(length, blocks) : this.#mask(length),
        rope: rope ? { cos: twice(rope.cos), sin: twice(rope.sin) } : null,
        cond: t === null ? null : this.#conditioning(t),
        drop: rate > 0
          ? (x) => tf.dropout(x, rate, undefined, seeds.nextUint32())
          : (x) => x,
      };
      const embedded = blocks?.clean
        ? tf.concat(
          tf.split(tokens, 2, 1).map((z) => this.#embed(z as tf.Tensor2D, 0)),
          1,
        ) as tf.Tensor3D
        : this.#embed(tokens, 0);
      let x = ctx.drop(embedded) as tf.Tensor3D; // [B, T, d]
      for (let i = 0; i < this.config.nLayer; i++) x = this.#block(i, x, ctx);
      if (blocks?.clean) x = tf.slice(x, [0, 0, 0], [-1, span, -1]); // x_t's
      if (this.config.shift && length > 1) {
        // Position i + 1 reads position i's output; position 0 its own.
        x = tf.concat([
          tf.slice(x, [0, 0, 0], [-1, 1, -1]),
          tf.slice(x, [0, 0, 0], [-1, length - 1, -1]),
        ], 1) as tf.Tensor3D;
      }
      if (options.lastOnly) {
        x = tf.slice(x, [0, length - 1, 0], [-1, 1, -1]); // [B, 1, d]
      }
      return this.#head(x, ctx.cond);
    });
  }

  /**
   * An empty KV cache for {@linkcode Transformer.decode}.
   *
   * @param batchSize Rows decoded together.
   * @returns A cache the caller disposes.
   */
  createCache(batchSize: number): KVCache {
    return new KVCache(this.config.nLayer, {
      batchSize,
      capacity: this.config.contextLength,
    });
  }

  /**
   * Incremental AR decoding: logits for `tokens` placed after the cached
   * ones, appending their keys and values to the cache. Feeding a sequence
   * in pieces gives the logits of one `forward` call (within float32
   * rounding). Causal models without time conditioning only; no dropout.
   *
   * @param tokens New token ids, int32 [B, S] (a prompt, or one token).
   * @param cache A cache from {@linkcode Transformer.createCache}.
   * @returns Logits [B, S, V]; the caller disposes them.
   *
   * @example
   * ```ts
   * import * as tf from "@tensorflow/tfjs";
   * import { preset, Transformer } from "@d3pm/transformer";
   * import { assertEquals } from "@std/assert";
   * await tf.setBackend("cpu");
   * const model = new Transformer(preset("tiny", {
   *   vocabSize: 32, nLayer: 1, dModel: 16, nHead: 2, dMlp: 32,
   * }));
   * const cache = model.createCache(1);
   * const prompt = tf.tensor2d([[3, 4]], [1, 2], "int32");
   * const next = tf.tensor2d([[5]], [1, 1], "int32");
   * tf.dispose([model.decode(prompt, cache), model.decode(next, cache)]);
   * assertEquals(cache.length, 3);
   * tf.dispose([prompt, next]);
   * cache.dispose();
   * model.dispose();
   * ```
   */
  decode(tokens: Tensor2D, cache: KVCache): Tensor3D {
    if (this.config.kind !== "causal" || this.config.timeConditioning) {
      throw new Error(
        `Cannot decode with a KV cache: needs a causal model without time conditioning, got kind ${this.config.kind}, timeConditioning ${this.config.timeConditioning}`,
      );
    }
    const offset = cache.length;
    this.#checkTokens(tokens, "decode", offset);
    if (tokens.shape[0] !== cache.batchSize) {
      throw new RangeError(
        `Cannot decode: tokens have batch ${
          tokens.shape[0]
        }, the cache has batch ${cache.batchSize}`,
      );
    }
    // One new token sees every cached one: no mask needed.
    return this.#cachedPass(
      tokens,
      cache,
      (length) => length > 1 ? causalMask(length, offset) : null,
      true,
    );
  }

  /**
   * Block diffusion's cached generation (`BlockDecoder`): logits of one
   * block `tokens` placed after the clean blocks in `cache`, the block
   * seeing every cached position and itself — what the one-stream block
   * layout gives for the last block. With `commit`, the block's keys and
   * values join the cache (once it is clean); without, the cache is
   * unchanged. Bidirectional models without time conditioning, shift or an
   * attention window; no dropout.
   *
   * @param tokens The block, int32 `[B, S]`.
   * @param cache A cache from {@linkcode Transformer.createCache}.
   * @param options Whether to commit the block.
   * @returns Logits `[B, S, V]`; the caller disposes them.
   *
   * @example Two blocks through the cache: the logits of the one-stream layout
   * ```ts
   * import * as tf from "@tensorflow/tfjs";
   * import { preset, Transformer } from "@d3pm/transformer";
   * import { assert } from "@std/assert";
   * await tf.setBackend("cpu");
   * const model = new Transformer(preset("tiny", {
   *   kind: "bidirectional", vocabSize: 16, nLayer: 1, dModel: 8, nHead: 2, dMlp: 16,
   * }), { seed: 1 });
   * const row = tf.tensor2d([[1, 2, 3, 4]], [1, 4], "int32");
   * const whole = model.forward(row, { blocks: { size: 2, clean: false } });
   * const cache = model.createCache(1);
   * const [a, b] = tf.split(row, 2, 1) as tf.Tensor2D[];
   * model.decodeBlock(a, cache, { commit: true }).dispose();
   * const second = model.decodeBlock(b, cache);
   * const want = tf.slice(whole, [0, 2, 0], [1, 2, 16]);
   * assert(tf.max(tf.abs(tf.sub(second, want))).dataSync()[0] < 1e-5);
   * tf.dispose([row, whole, a, b, second, want]);
   * cache.dispose();
   * model.dispose();
   * ```
   */
  decodeBlock(
    tokens: Tensor2D,
    cache: KVCache,
    options: { commit?: boolean } = {},
  ): Tensor3D {
    const c = this.config;
    if (
      c.kind !== "bidirectional" || c.timeConditioning || c.shift ||
      this.attentionWindow !== Infinity
    ) {
      throw new Error(
        `Cannot decode a block with a KV cache: needs a bidirectional model without time conditioning, shift or an attention window, got kind ${c.kind}, timeConditioning ${c.timeConditioning}`,
      );
    }
    const offset = cache.length;
    this.#checkTokens(tokens, "decode a block", offset);
    if (tokens.shape[0] !== cache.batchSize) {
      throw new RangeError(
        `Cannot decode a block: tokens have batch ${
          tokens.shape[0]
        }, the cache has batch ${cache.batchSize}`,
      );
    }
    // The block sees every cached position and itself: only ALiBi's
    // distances, the block's rows of the whole span's.
    return this.#cachedPass(
      tokens,
      cache,
      (length) =>
        c.alibi
          ? tf.slice(this.#alibiBias(offset + length), [0, offset, 0], [
            -1,
            length,
            -1,
          ])
          : null,
      options.commit ?? false,
    );
  }

  /**
   * A pass of `tokens` after the positions in `cache` (no time, no
   * dropout): the scores' mask from `mask(length)`; with `commit`, the
   * new keys and values join the cache.
   */
  #cachedPass(
    tokens: tf.Tensor2D,
    cache: KVCache,
    mask: (length: number) => tf.Tensor2D | tf.Tensor3D | null,
    commit: boolean,
  ): Tensor3D {
    const offset = cache.length;
    return tf.tidy(() => {
      const length = tokens.shape[1];
      const past: (LayerKV | null)[] = [];
      for (let i = 0; i < this.config.nLayer; i++) past.push(cache.layer(i));
      const ctx: AttentionContext = {
        mask: mask(length),
        rope: this.config.positions === "rotary"
          ? ropeTables(offset, length, this.#headDim)
          : null,
        cond: null,
        drop: (x) => x,
        past,
        present: [],
      };
      let x = this.#embed(tokens, offset); // [B, S, d]
      for (let i = 0; i < this.config.nLayer; i++) x = this.#block(i, x, ctx);
      if (commit) cache.update(ctx.present!, length);
      return this.#head(x, null);
    });
  }

  /**
   * The trainable variables, for `optimizer.minimize(f, false, varList)` or
   * `tf.variableGrads(f, varList)`.
   *
   * @returns Every parameter, in canonical order.
   */
  trainableVariables(): Variable[] {
    this.#alive();
    return [...this.variables.values()];
  }

  /**
   * Overwrite every parameter. Names and shapes must match exactly.
   *
   * @param weights Name → float32 tensor (not taken over: the caller
   *   still disposes them).
   */
  setWeights(weights: ReadonlyMap<string, Tensor>): void {
    this.#alive();
    const shapes = new Map(
      [...this.variables].map(([name, v]) => [name, v.shape]),
    );
    checkWeights(weights, shapes);
    for (const [name, w] of weights) {
      if (w.dtype !== "float32") {
        throw new RangeError(
          `Cannot set weights: "${name}" has dtype ${w.dtype}, expected float32`,
        );
      }
    }
    for (const [name, variable] of this.variables) {
      variable.assign(weights.get(name)!);
    }
  }

  /** Free every variable. The model is unusable afterwards (a call says so). */
  dispose(): void {
    this.#disposed = true;
    for (const v of this.variables.values()) v.dispose();
  }

  #v(name: string): tf.Variable {
    this.#alive();
    return this.variables.get(name)!;
  }

  // Every read of a parameter comes here: a disposed variable failed deep in
  // tfjs with "Cannot read properties of undefined (reading 'backend')".
  #alive(): void {
    if (this.#disposed) {
      throw new Error(
        "Cannot use the Transformer: the model was disposed; build or load it again",
      );
    }
  }

  #checkTokens(
    tokens: tf.Tensor2D,
    what: string,
    offset: number,
    streams = 1,
  ): void {
    if (!(tokens instanceof tf.Tensor) || tokens.rank !== 2) {
      throw new RangeError(
        `Cannot ${what}: tokens must be a rank-2 tensor [B, T], got ${
          tokens instanceof tf.Tensor
            ? `shape [${tokens.shape}]`
            : typeof tokens
        }`,
      );
    }
    if (tokens.dtype !== "int32") {
      throw new RangeError(
        `Cannot ${what}: tokens must be int32, got ${tokens.dtype}`,
      );
    }
    const [b, all] = tokens.shape;
    const length = all / streams;
    if (b < 1 || length < 1 || offset + length > this.config.contextLength) {
      throw new RangeError(
        `Cannot ${what}: need 1 ≤ B and 1 ≤ T ≤ ${
          this.config.contextLength - offset
        }${
          streams > 1 ? ` per stream (${streams} streams)` : ""
        } (context ${this.config.contextLength}, ${offset} cached), got [${tokens.shape}]`,
      );
    }
  }

  #checkBlocks(
    tokens: tf.Tensor2D,
    blocks: BlockLayout,
    options: TransformerForwardOptions,
  ): void {
    const fail = (what: string): never => {
      throw new RangeError(`Cannot forward with block attention: ${what}`);
    };
    if (this.config.kind !== "bidirectional") {
      fail(`needs a bidirectional model, got kind ${this.config.kind}`);
    }
    if (
      this.config.shift || options.lastOnly || this.attentionWindow !== Infinity
    ) {
      fail("not with shift, lastOnly or an attention window");
    }
    if (!Number.isInteger(blocks.size) || blocks.size < 1) {
      fail(`blocks.size must be an integer ≥ 1, got ${blocks.size}`);
    }
    const length = tokens instanceof tf.Tensor && tokens.rank === 2
      ? tokens.shape[1]
      : 0;
    if (blocks.clean && length % 2 !== 0) {
      fail(`two streams [x_t ; x_0] need an even length, got ${length}`);
    }
    // Two streams are checked as one of their halves.
    this.#checkTokens(
      tokens,
      "forward with block attention",
      0,
      blocks.clean ? 2 : 1,
    );
  }

  #checkTime(t: tf.Tensor1D | undefined, batch: number): tf.Tensor1D | null {
    if (!this.config.timeConditioning) return null;
    if (t === undefined) {
      throw new RangeError(
        "Cannot forward: this model is time-conditioned, pass options.t of shape [B]",
      );
    }
    if (!(t instanceof tf.Tensor) || t.rank !== 1 || t.shape[0] !== batch) {
      throw new RangeError(
        `Cannot forward: t must have shape [${batch}], got ${
          t instanceof tf.Tensor ? `[${t.shape}]` : typeof t
        }`,
      );
    }
    return t;
  }

  // Token (+ learned position) embeddings: [B, T] → [B, T, d].
  #embed(tokens: tf.Tensor2D, offset: number): tf.Tensor3D {
    const [b, length] = tokens.shape;
    const d = this.config.dModel;
    const ids = tf.reshape(tokens, [-1]) as tf.Tensor1D; // [B·T]
    const wte = this.#v("wte.weight") as tf.Tensor2D;
    let x = tf.reshape(embeddingLookup(wte, ids), [b, length, d]); // [B, T, d]
    if (this.config.positions === "learned") {
      const wpe = this.#v("wpe.weight");
      x = tf.add(x, tf.slice(wpe, [offset, 0], [length, d])); // + [T, d]
    }
    return x as tf.Tensor3D;
  }

  // SiLU(MLP(sinusoidal(t))): the vector every adaLN projection reads.
  #conditioning(t: tf.Tensor1D): tf.Tensor2D {
    const feats = timeFeatures(t, this.config.dTime); // [B, dTime]
    const hidden = silu(linear(
      feats,
      this.#v("time.mlp.c_fc.weight") as tf.Tensor2D,
      this.#v("time.mlp.c_fc.bias") as tf.Tensor1D,
    ));
    const c = linear(
      hidden,
      this.#v("time.mlp.c_proj.weight") as tf.Tensor2D,
      this.#v("time.mlp.c_proj.bias") as tf.Tensor1D,
    ); // [B, dTime]
    return silu(c) as tf.Tensor2D;
  }

  // Pre-LN block: x + attn(LN(x)), then x + mlp(LN(x)). With time
  // conditioning the LN outputs are shifted/scaled and the branches gated by
  // (1 + gate); all three start at 0, i.e. the unconditioned block.
  #block(i: number, x: tf.Tensor3D, ctx: AttentionContext): tf.Tensor3D {
    const p = (n: string) => this.#v(`h.${i}.${n}`);
    const mods = ctx.cond === null ? null : tf.split(
      linear(
        ctx.cond,
        p("ada.weight") as tf.Tensor2D,
        p("ada.bias") as tf.Tensor1D,
      ),
      6,
      1,
    ); // 6 × [B, d]: shift, scale, gate (attention), shift, scale, gate (MLP)
    const gate = (y: tf.Tensor, g: tf.Tensor) =>
      tf.mul(y, tf.add(tf.expandDims(g, 1), 1));

    let h = layerNorm(x, p("ln_1.weight"), p("ln_1.bias")); // [B, T, d]
    if (mods) h = modulate(h, mods[0], mods[1]);
    let a = ctx.drop(this.#attention(i, h as tf.Tensor3D, ctx)); // [B, T, d]
    if (mods) a = gate(a, mods[2]);
    x = tf.add(x, a);

    h = layerNorm(x, p("ln_2.weight"), p("ln_2.bias"));
    if (mods) h = modulate(h, mods[3], mods[4]);
    const up = gelu(linear(
      h,
      p("mlp.c_fc.weight") as tf.Tensor2D,
      p("mlp.c_fc.bias") as tf.Tensor1D,
    )); // [B, T, dMlp]
    let m = ctx.drop(linear(
      up,
      p("mlp.c_proj.weight") as tf.Tensor2D,
      p("mlp.c_proj.bias") as tf.Tensor1D,
    )); // [B, T, d]
    if (mods) m = gate(m, mods[5]);
    return tf.add(x, m);
  }

  /** The scores' additive mask in `forward`: causal, ALiBi and the attention window. */
  #mask(length: number): tf.Tensor2D | tf.Tensor3D | null {
    if (this.config.kind === "causal") return causalMask(length, 0);
    const alibi = this.config.alibi ? this.#alibiBias(length) : null;
    const w = this.attentionWindow;
    if (!(w < length - 1)) return alibi;
    const values = new Float32Array(length * length);
    for (let i = 0; i < length; i++) {
      const from = i + Math.max(0, Math.floor(w)) + 1;
      if (from < length) {
        values.fill(MASKED, i * length + from, (i + 1) * length);
      }
    }
    const window = tf.tensor2d(values, [length, length]);
    return alibi ? tf.add(alibi, window) as tf.Tensor3D : window;
  }

  /**
   * The scores' additive mask with block attention: which keys each query
   * sees (`BlockLayout`), plus ALiBi measured between positions (each
   * stream at 0..L−1).
   */
  #blockMask(length: number, blocks: BlockLayout): tf.Tensor2D | tf.Tensor3D {
    const span = blocks.clean ? length / 2 : length;
    const key = `${length}:${blocks.size}:${blocks.clean}`;
    let values = this.#blockMasks.get(key);
    if (!values) {
      const block = (p: number) => Math.floor((p % span) / blocks.size);
      const noisy = (p: number) => blocks.clean && p < span;
      const sees = (i: number, j: number) =>
        !blocks.clean
          ? block(j) <= block(i)
          : noisy(i)
          ? (noisy(j) ? block(j) === block(i) : block(j) < block(i))
          : !noisy(j) && block(j) <= block(i);
      values = new Float32Array(length * length);
      for (let i = 0; i < length; i++) {
        for (let j = 0; j < length; j++) {
          if (!sees(i, j)) values[i * length + j] = MASKED;
        }
      }
      this.#blockMasks.set(key, values);
    }
    const mask = tf.tensor2d(values, [length, length]);
    if (!this.config.alibi) return mask;
    const alibi = this.#alibiBias(span);
    return tf.add(blocks.clean ? tf.tile(alibi, [1, 2, 2]) : alibi, mask);
  }

  // The ALiBi penalty [H, T, T] of this model for sequences of `length`.
  #alibiBias(length: number): tf.Tensor3D {
    const nHead = this.config.nHead;
    let values = this.#alibi.get(length);
    if (!values) {
      values = alibiValues(
        length,
        nHead,
        this.config.alibi!,
        this.config.alibiMode ?? "symmetric",
      );
      this.#alibi.set(length, values);
    }
    return tf.tensor3d(values, [nHead, length, length]);
  }

  #attention(i: number, h: tf.Tensor3D, ctx: AttentionContext): tf.Tensor3D {
    const p = (n: string) => this.#v(`h.${i}.attn.${n}`);
    const [b, length, d] = h.shape;
    const nHead = this.config.nHead, hd = this.#headDim;
    const qkv = linear(
      h,
      p("c_attn.weight") as tf.Tensor2D,
      p("c_attn.bias") as tf.Tensor1D,
    ); // [B, T, 3d]
    const heads = (z: tf.Tensor) =>
      tf.transpose(tf.reshape(z, [b, length, nHead, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
    const [qFlat, kFlat, vFlat] = tf.split(qkv, 3, 2); // 3 × [B, T, d]
    // Scaling q (not the [T, T] scores) is the cheaper place for 1/√hd.
    let q = heads(tf.mul(qFlat, 1 / Math.sqrt(hd))) as tf.Tensor4D;
    let k = heads(kFlat) as tf.Tensor4D;
    let v = heads(vFlat) as tf.Tensor4D;
    if (ctx.rope) {
      q = applyRope(q, ctx.rope.cos, ctx.rope.sin);
      k = applyRope(k, ctx.rope.cos, ctx.rope.sin);
    }
    if (ctx.past) {
      const before = ctx.past[i];
      if (before) {
        k = tf.concat([before.k, k], 2); // [B, H, P + T, hd]
        v = tf.concat([before.v, v], 2);
      }
      ctx.present!.push({ k, v });
    }
    let scores = tf.matMul(q, k, false, true); // [B, H, T, P + T]
    if (ctx.mask) scores = tf.add(scores, ctx.mask);
    const weights = ctx.drop(tf.softmax(scores, -1));
    const y = tf.matMul(weights as tf.Tensor4D, v); // [B, H, T, hd]
    const merged = tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [b, length, d]); // [B, T, d]
    return linear(
      merged,
      p("c_proj.weight") as tf.Tensor2D,
      p("c_proj.bias") as tf.Tensor1D,
    ) as tf.Tensor3D;
  }

  // Final LayerNorm (modulated when time-conditioned) and the tied head.
  #head(x: tf.Tensor, cond: tf.Tensor2D | null): tf.Tensor3D {
    const [b, length, d] = x.shape;
    let h = layerNorm(x, this.#v("ln_f.weight"), this.#v("ln_f.bias"));
    if (cond) {
      const [shift, scale] = tf.split(
        linear(
          cond,
          this.#v("ln_f.ada.weight") as tf.Tensor2D,
          this.#v("ln_f.ada.bias") as tf.Tensor1D,
        ),
        2,
        1,
      ); // 2 × [B, d]
      h = modulate(h, shift, scale);
    }
    const wte = this.#v("wte.weight") as tf.Tensor2D; // [V, d]
    const logits = tf.matMul(
      tf.reshape(h, [b * length, d]) as tf.Tensor2D,
      wte,
      false,
      true,
    ); // [B·T, V]
    return tf.reshape(logits, [b, length, this.config.vocabSize]);
  }
}

// Exactly the expected names, each with the expected shape.
function checkWeights(
  weights: ReadonlyMap<string, { shape: readonly number[] }>,
  shapes: ReadonlyMap<string, readonly number[]>,
): void {
  for (const name of weights.keys()) {
    if (!shapes.has(name)) {
      throw new RangeError(
        `Cannot set weights: unexpected tensor "${name}" for this config`,
      );
    }
  }
  for (const [name, shape] of shapes) {
    const w = weights.get(name);
    if (w === undefined) {
      throw new RangeError(`Cannot set weights: missing tensor "${name}"`);
    }
    if (!tf.util.arraysEqual([...w.shape], [...shape])) {
      throw new RangeError(
        `Cannot set weights: "${name}" has shape [${w.shape}], expected [${shape}]`,
      );
    }
  }
}

function silu(x: tf.Tensor): tf.Tensor {
  return tf.mul(x, tf.sigmoid(x));
}

// ALiBi's distance penalty [H, T, T]. Symmetric: head h lowers the score of
// a key |i − j| away by slope · 2^(−8h/H) · |i − j|. Neighbours: heads 0 and
// 1 measure the distance from i − 1 and i + 1 instead, with the full slope.
function alibiValues(
  length: number,
  nHead: number,
  slope: number,
  mode: AlibiMode,
): Float32Array {
  const values = new Float32Array(nHead * length * length);
  for (let h = 0; h < nHead; h++) {
    const neighbour = mode === "neighbours" && h < 2;
    const m = neighbour ? slope : slope * 2 ** ((-8 * h) / nHead);
    const centre = neighbour ? (h === 0 ? -1 : 1) : 0;
    for (let i = 0; i < length; i++) {
      for (let j = 0; j < length; j++) {
        values[(h * length + i) * length + j] = -m * Math.abs(j - i - centre);
      }
    }
  }
  return values;
}

// Additive mask [T, offset + T]: query i (absolute position offset + i) sees
// keys j ≤ offset + i.
function causalMask(length: number, offset: number): tf.Tensor2D {
  const width = offset + length;
  const values = new Float32Array(length * width);
  for (let i = 0; i < length; i++) {
    values.fill(MASKED, i * width + offset + i + 1, (i + 1) * width);
  }
  return tf.tensor2d(values, [length, width]);
}
