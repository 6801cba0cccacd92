// The plans run on a second executor of `Kernels` that needs no device: it
// checks that every tensor a call touches lies inside one tensor of its
// table — one parameter (or its gradient), one arena entry — so a wrong
// offset, shape or stride in a plan or a layout shows up without a GPU, at
// any size (the paper size included, which this machine cannot allocate).

import { assert, assertEquals, assertThrows } from "@std/assert";
import { type ModelConfig, preset, validateConfig } from "@d3pm/transformer";
import type {
  Accumulator,
  AttentionBackwardArgs,
  DecodeAttentionArgs,
  DecodeEmbedArgs,
  Epilogue,
  Kernels,
  LayerNormBackwardArgs,
  MatmulDims,
  MatmulExtra,
  MatmulOperand,
  Operand,
  Region,
  RegionOffset,
} from "./_kernels.ts";
import {
  type Arena,
  type IntLayout,
  type ParameterTable,
  parameterTable,
  planArena,
  planInts,
  type PlanMode,
} from "./_layout.ts";
import {
  recordBackward,
  recordEvaluation,
  recordForward,
  recordHead,
  recordScore,
} from "./_plan.ts";
import { decodeSplitChunk, planDecode, recordDecode } from "./_decode.ts";

type Extent = [start: number, floats: number];

// The starts of a table's tensors and its end: a span must fit between two
// consecutive bounds.
class Bounds {
  #starts: number[];
  constructor(starts: Iterable<number>, end: number) {
    this.#starts = [...new Set([...starts].filter((x) => x >= 0)), end].sort(
      (a, b) => a - b,
    );
  }
  check([start, floats]: Extent, what: string): void {
    const s = this.#starts;
    let i = s.length - 1;
    while (i >= 0 && s[i] > start) i--;
    if (i < 0 || i === s.length - 1 || start + floats > s[i + 1]) {
      throw new Error(
        `${what}: [${start}, ${start + floats}) is not inside one tensor`,
      );
    }
  }
}

// Every offset of an arena (numbers, layers' numbers), decode arenas too.
function arenaStarts(a: object): number[] {
  const out: number[] = [];
  for (const [key, value] of Object.entries(a)) {
    if (key === "size" || key === "chunkRows") continue;
    if (typeof value === "number") out.push(value);
    else if (Array.isArray(value)) {
      for (const v of value) {
        if (typeof v === "number") out.push(v);
        else out.push(...arenaStarts(v));
      }
    } else if (value && typeof value === "object") {
      out.push(...arenaStarts(value));
    }
  }
  return out;
}

/** A `Kernels` that executes nothing and checks every extent it is given. */
class ExtentChecker implements Kernels {
  readonly dropout: boolean;
  calls = 0;
  #regions: Partial<Record<Region, Bounds>>;
  #c: ModelConfig;

  constructor(
    c: ModelConfig,
    table: ParameterTable,
    arena: { size: number },
    o: { training: boolean; logits?: number; dropout?: boolean },
  ) {
    this.#c = c;
    this.dropout = o.dropout ?? false;
    const params = new Bounds(table.entries.map((e) => e.offset), table.size);
    this.#regions = {
      act: new Bounds(arenaStarts(arena), arena.size),
      params,
      ...(o.training ? { grads: params } : {}),
      ...(o.logits ? { logits: new Bounds([0], o.logits) } : {}),
    };
  }

  #in(region: Region, extent: Extent, what: string): void {
    const b = this.#regions[region];
    if (!b) throw new Error(`${what}: this plan has no ${region} region`);
    b.check(extent, `${what} (${region})`);
  }

  begin(_name: string): void {}

  matmul(
    dims: MatmulDims,
    a: MatmulOperand,
    b: MatmulOperand,
    c: Operand,
    epilogue: Epilogue,
    extra: MatmulExtra = {},
  ): void {
    this.calls++;
    const { m, n, k } = dims;
    const matrix = (
      o: Operand,
      rows: number,
      cols: number,
      what: string,
    ) => {
      assert(o.ld >= cols, `${what}: ld ${o.ld} < ${cols} columns`);
      this.#in(o.buf, [o.off, (rows - 1) * o.ld + cols], what);
    };
    const what = `matmul ${m}×${n}×${k} ${epilogue}`;
    matrix(a, a.trans ? k : m, a.trans ? m : k, `${what}: A`);
    matrix(b, b.trans ? n : k, b.trans ? k : n, `${what}: B`);
    matrix(c, m, n, `${what}: C`);
    assert(c.buf !== "params", `${what} writes the parameters`);
    if (extra.bias) {
      this.#in(extra.bias.buf, [extra.bias.off, n], `${what}: bias`);
    }
    if (extra.e) matrix(extra.e, m, n, `${what}: E`);
  }

  layernormForward(
    rows: number,
    d: number,
    x: number,
    y: number,
    w: number,
    b: number,
    mean: number,
    rstd: number,
  ): void {
    this.calls++;
    this.#in("act", [x, rows * d], "layernorm x");
    this.#in("act", [y, rows * d], "layernorm y");
    this.#in("act", [mean, rows], "layernorm mean");
    this.#in("act", [rstd, rows], "layernorm rstd");
    this.#in("params", [w, d], "layernorm w");
    this.#in("params", [b, d], "layernorm b");
  }

  layernormBackward(
    rows: number,
    d: number,
    s: LayerNormBackwardArgs,
  ): void {
    this.calls++;
    for (const key of ["dy", "x", "dx"] as const) {
      this.#in("act", [s[key], rows * d], `layernorm backward ${key}`);
    }
    this.#in("grads", [s.gw, d], "layernorm backward gw");
    this.#in("grads", [s.gb, d], "layernorm backward gb");
  }

  gateBackward(): void {
    this.calls++;
  }
  modulateBackward(): void {
    this.calls++;
  }
  dropoutBackward(n: number, _site: number, src: number, dst: number): void {
    this.calls++;
    this.#in("act", [src, n], "dropout backward src");
    this.#in("act", [dst, n], "dropout backward dst");
  }
  siluBackward(n: number, dx: number, pre: number): void {
    this.calls++;
    this.#in("act", [dx, n], "silu backward dx");
    this.#in("act", [pre, n], "silu backward pre");
  }

  columnSum(rows: number, cols: number, x: number, out: number): void {
    this.calls++;
    this.#in("act", [x, rows * cols], "column sum x");
    this.#in("grads", [out, cols], "column sum out");
  }

  embedForward(
    n: number,
    d: number,
    _length: number,
    _tokens: number,
    wte: number,
    wpe: number,
    out: number,
  ): void {
    this.calls++;
    this.#in("params", [wte, this.#c.vocabSize * d], "embed wte");
    if (wpe >= 0) this.#in("params", [wpe, this.#c.contextLength * d], "wpe");
    this.#in("act", [out, n * d], "embed out");
  }

  embedBackward(
    batch: number,
    length: number,
    d: number,
    dx: number,
    _ints: IntLayout,
    gWte: number,
    gWpe: number,
  ): void {
    this.calls++;
    this.#in("act", [dx, batch * length * d], "embed backward dx");
    this.#in("grads", [gWte, this.#c.vocabSize * d], "embed backward wte");
    if (gWpe >= 0) {
      this.#in("grads", [gWpe, this.#c.contextLength * d], "backward wpe");
    }
  }

  rope(
    n: number,
    length: number,
    heads: number,
    hd: number,
    qkv: number,
    cos: number,
    sin: number,
  ): void {
    this.calls++;
    this.#in("act", [qkv, n * 3 * heads * hd], "rope qkv");
    this.#in("act", [cos, length * hd / 2], "rope cos");
    this.#in("act", [sin, length * hd / 2], "rope sin");
  }

  attentionForward(
    c: ModelConfig,
    batch: number,
    length: number,
    qkv: number,
    y: number,
    lse: number,
  ): void {
    this.calls++;
    const n = batch * length, d = c.dModel;
    this.#in("act", [qkv, n * 3 * d], "attention qkv");
    this.#in("act", [y, n * d], "attention y");
    this.#in("act", [lse, n * c.nHead], "attention lse");
  }

  attentionBackward(
    c: ModelConfig,
    batch: number,
    length: number,
    s: AttentionBackwardArgs,
  ): void {
    this.calls++;
    const n = batch * length, d = c.dModel;
    this.#in("act", [s.qkv, n * 3 * d], "attention backward qkv");
    this.#in("act", [s.dqkv, n * 3 * d], "attention backward dqkv");
    for (const key of ["y", "dy"] as const) {
      this.#in("act", [s[key], n * d], `attention backward ${key}`);
    }
    this.#in("act", [s.lse, n * c.nHead], "attention backward lse");
    this.#in("act", [s.D, n * c.nHead], "attention backward D");
  }

  crossEntropy(
    rows: number,
    vocab: number,
    logits: number,
    rowStart: number,
    _targets: number,
    weights: number,
    rowLoss: number,
  ): void {
    this.calls++;
    this.#in("act", [logits, rows * vocab], "cross-entropy logits");
    this.#in("act", [weights + rowStart, rows], "cross-entropy weights");
    this.#in("act", [rowLoss + rowStart, rows], "cross-entropy row losses");
  }

  lossReduce(n: number, rowLoss: number, _into: Accumulator): void {
    this.calls++;
    this.#in("act", [rowLoss, n], "loss reduce");
  }
  gradNorm(_n: number, partial: number): void {
    this.calls++;
    this.#in("act", [partial, 256], "grad norm partials");
  }
  adamw(): void {
    this.calls++;
  }
  ema(): void {
    this.calls++;
  }

  decodeEmbed(
    batch: number,
    d: number,
    _length: number,
    s: DecodeEmbedArgs,
  ): void {
    this.calls++;
    this.#in("params", [s.wte, this.#c.vocabSize * d], "decode embed wte");
    this.#in("act", [s.out, batch * d], "decode embed out");
  }

  decodeAttention(
    c: ModelConfig,
    batch: number,
    length: number,
    s: DecodeAttentionArgs,
  ): void {
    this.calls++;
    const d = c.dModel;
    this.#in("act", [s.qkv, batch * 3 * d], "decode attention qkv");
    this.#in("act", [s.k, batch * length * d], "decode attention k cache");
    this.#in("act", [s.v, batch * length * d], "decode attention v cache");
    this.#in("act", [s.y, batch * d], "decode attention y");
    const hd = d / c.nHead;
    this.#in("act", [
      s.partial,
      batch * c.nHead * Math.ceil(length / decodeSplitChunk(hd)) * (hd + 2),
    ], "decode attention split scratch");
  }

  suppress(
    rows: number,
    vocab: number,
    logits: RegionOffset,
  ): void {
    this.calls++;
    this.#in(logits.buf, [logits.off, rows * vocab], "suppress");
  }
  argmax(rows: number, vocab: number, logits: number): void {
    this.calls++;
    this.#in("act", [logits, rows * vocab], "argmax");
  }
  commit(): void {
    this.calls++;
  }
}

// Record every plan of a config at (batch, length) into checkers.
function checkPlans(c: ModelConfig, batch: number, length: number): number {
  const table = parameterTable(c);
  const ints = planInts(batch * length);
  const n = batch * length, chunk = 1 << 20;
  let calls = 0;
  for (const mode of ["training", "score", "forward"] as PlanMode[]) {
    const arena: Arena = planArena(c, batch, length, mode, chunk);
    const k = new ExtentChecker(c, table, arena, {
      training: mode === "training",
      logits: mode === "forward" ? n * c.vocabSize : undefined,
      dropout: mode === "training" && c.dropout > 0,
    });
    recordForward(k, c, table, arena, ints, batch, length);
    if (mode === "training") {
      recordBackward(k, c, table, arena, ints, batch, length, 0xffffffff);
      recordEvaluation(k, c, table, arena, ints, n, 0xffffffff);
    } else if (mode === "score") recordScore(k, c, table, arena, ints, n, 0);
    else recordHead(k, c, table, arena, n);
    calls += k.calls;
  }
  if (c.kind === "causal" && !c.timeConditioning) {
    const { arena, ints: dints } = planDecode(c, batch, length, chunk);
    const k = new ExtentChecker(c, table, arena, { training: false });
    recordDecode(k, c, table, arena, dints, batch, length);
    calls += k.calls;
  }
  return calls;
}

Deno.test("every plan keeps each kernel call inside one tensor of its tables, every model variant", () => {
  const base = {
    vocabSize: 37,
    contextLength: 9,
    nLayer: 2,
    nHead: 3,
    dModel: 24,
    dMlp: 40,
    dTime: 8,
  };
  let variants = 0;
  for (const kind of ["causal", "bidirectional"] as const) {
    for (const positions of ["learned", "rotary"] as const) {
      for (
        const timeConditioning of kind === "causal" ? [false] : [false, true]
      ) {
        for (const dropout of [0, 0.1]) {
          const c = validateConfig({
            ...base,
            kind,
            positions,
            timeConditioning,
            dropout,
          });
          assert(checkPlans(c, 2, 7) > 0);
          variants++;
        }
      }
    }
  }
  assertEquals(variants, 12);
});

Deno.test("the paper size's plans stay inside their tensors (no device needed)", () => {
  for (const kind of ["causal", "bidirectional"] as const) {
    const c = preset("paper", { kind });
    assert(checkPlans(c, 4, 1024) > 200);
  }
});

Deno.test("the extent checker rejects a matmul that reads past its tensor", () => {
  const c = preset("tiny");
  const table = parameterTable(c);
  const arena = planArena(c, 1, 8, "forward", 1 << 20);
  const k = new ExtentChecker(c, table, arena, { training: false });
  const w = table.byName.get("h.0.attn.c_attn.weight")!.offset;
  const d = c.dModel;
  const call = (cols: number) =>
    k.matmul(
      { m: 8, n: cols, k: d },
      { buf: "act", off: arena.layers[0].ln1, ld: d },
      { buf: "params", off: w, ld: cols },
      { buf: "act", off: arena.layers[0].qkv, ld: cols },
      "store",
    );
  call(3 * d); // exactly the qkv weight and activation
  assertThrows(() => call(3 * d + 4), Error, "is not inside one tensor");
});
