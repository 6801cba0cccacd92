import { assertEquals } from "@std/assert";
import { type CpuKernels, createCpuKernels } from "./kernels.ts";
import { attentionBackward, attentionForward } from "./attention.ts";
import { layernormBackward, layernormForward } from "./layernorm.ts";
import { columnSum, matmul } from "./matmul.ts";
import { crossEntropy } from "./cross_entropy.ts";
import { adamw, gradNorm } from "./optimizer.ts";
import { embeddingBackward, embeddingIndex } from "./embedding.ts";
import { blas, fill } from "./_test_util.ts";

const B = 2, T = 33, H = 2, HD = 16, D = H * HD, N = B * T, V = 301;

// A chain of kernels on seeded data (each reduction among them: LayerNorm
// rows and columns, softmax rows, D, column sums, cross-entropy rows, the
// embedding scatter-add, the norm); every output, as bits.
function chain(k: CpuKernels): Uint32Array {
  const outs: Float32Array[] = [];
  const keep = <T extends Float32Array>(x: T) => (outs.push(x), x);
  const x = fill(k.floats(N * D), 1, 2), w = fill(k.floats(D), 2);
  const bias = fill(k.floats(D), 3);
  const y = keep(k.floats(N * D)),
    mean = keep(k.floats(N)),
    rstd = keep(k.floats(N));
  layernormForward(k, { rows: N, d: D, x, y, weight: w, bias, mean, rstd });
  const wqkv = fill(k.floats(D * 3 * D), 4, 0.5),
    bqkv = fill(k.floats(3 * D), 5);
  const qkv = keep(k.floats(N * 3 * D));
  matmul(k, {
    m: N,
    n: 3 * D,
    k: D,
    a: { view: y, ld: D },
    b: { view: wqkv, ld: 3 * D },
    c: { view: qkv, ld: 3 * D },
    epilogue: "bias",
    bias: bqkv,
  });
  const shape = {
    batch: B,
    length: T,
    heads: H,
    headDim: HD,
    causal: false,
    alibi: { slope: 1, neighbours: true },
  };
  const dropout = {
    seed: 1,
    site: 2,
    rate: 0.1,
    dropped: k.floats(B * H * T * T),
  };
  const att = keep(k.floats(N * D)),
    lse = keep(k.floats(B * H * T)),
    probs = keep(k.floats(B * H * T * T));
  attentionForward(k, { ...shape, qkv, y: att, lse, probs, dropout });
  const dy = fill(k.floats(N * D), 6), dqkv = keep(k.floats(N * 3 * D));
  attentionBackward(k, {
    ...shape,
    qkv,
    y: att,
    dy,
    probs,
    dqkv,
    scratch: k.floats(B * H * T * T),
    D: keep(k.floats(B * H * T)),
    dropout,
  });
  const dx = keep(k.floats(N * D)),
    gw = keep(k.floats(D)),
    gb = keep(k.floats(D));
  layernormBackward(k, {
    rows: N,
    d: D,
    dy: att,
    x,
    mean,
    rstd,
    weight: w,
    dx,
    gradWeight: gw,
    gradBias: gb,
  });
  columnSum(k, { rows: N, cols: 3 * D, x: dqkv, out: keep(k.floats(3 * D)) });
  const wte = fill(k.floats(V * D), 7), logits = keep(k.floats(N * V));
  matmul(k, {
    m: N,
    n: V,
    k: D,
    a: { view: y, ld: D },
    b: { view: wte, ld: D, trans: true },
    c: { view: logits, ld: V },
  });
  const targets = k.ints(N), weights = k.floats(N).fill(1);
  targets.set(Array.from({ length: N }, (_, i) => (i * 37) % V));
  crossEntropy(k, {
    rows: N,
    vocab: V,
    logits,
    targets,
    weights,
    loss: keep(k.floats(N)),
  });
  const gwte = keep(k.floats(V * D));
  matmul(k, {
    m: V,
    n: D,
    k: N,
    a: { view: logits, ld: V, trans: true },
    b: { view: y, ld: D },
    c: { view: gwte, ld: D },
  });
  const index = {
    uniq: k.ints(N),
    starts: k.ints(N + 1),
    positions: k.ints(N),
  };
  const count = embeddingIndex(targets, index);
  embeddingBackward(k, {
    batch: B,
    length: T,
    d: D,
    dx,
    index,
    count,
    gradWte: gwte,
  });
  const m = keep(k.floats(V * D)), v = keep(k.floats(V * D));
  const norm = gradNorm(k, gwte);
  adamw(k, {
    params: keep(wte),
    grads: gwte,
    m,
    v,
    decayEnd: 100,
    lr: 0.01,
    step: 1,
    gradScale: 1 / norm,
  });
  // A norm over several of its fixed chunks.
  outs.push(Float32Array.of(norm, gradNorm(k, fill(k.floats(100003), 9))));
  const all = new Float32Array(outs.reduce((s, o) => s + o.length, 0));
  let at = 0;
  for (const o of outs) {
    all.set(o, at);
    at += o.length;
  }
  return new Uint32Array(all.buffer);
}

async function bits(
  threads: number,
  products: "split" | "blas",
  grain = 1,
): Promise<Uint32Array> {
  const k = await createCpuKernels({
    words: 1 << 20,
    threads,
    grain,
    products,
  });
  try {
    return chain(k);
  } finally {
    k.dispose();
  }
}

Deno.test({
  name:
    "every kernel gives the same bits for 1, 2 or 3 threads splitting every call (products on the host)",
  ...blas,
  fn: async () => {
    const first = await bits(1, "blas");
    for (const threads of [2, 3]) {
      assertEquals(await bits(threads, "blas"), first, `${threads} threads`);
    }
    assertEquals(await bits(2, "blas", 65536), first, "default grain");
  },
});

Deno.test({
  name:
    "the whole chain, products split over the threads, gives the same bits run to run",
  ...blas,
  fn: async () => {
    for (const threads of [2, 3]) {
      const once = await bits(threads, "split");
      assertEquals(await bits(threads, "split"), once, `${threads} threads`);
    }
  },
});
