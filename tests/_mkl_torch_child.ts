// Child of tests/mkl_torch_test.ts: loads the CBLAS at argv[0] (PyTorch's
// libtorch_cpu.so: MKL, Fortran sgemm_ only) beside the default one, and
// prints one JSON line of what each did. A child, so that the test process
// never loads PyTorch's library, and its exit is checked too.
import { blasThreads, loadCblas } from "@d3pm/backend/cblas";
import { CpuTransformer } from "@d3pm/cpu";
import { validateConfig } from "@d3pm/transformer";

const path = Deno.args[0];
Deno.env.delete("D3PM_CBLAS_PATH"); // the comparison side: the default search
const torch = loadCblas({ path, coretype: false });
const open = loadCblas();

// Products on both libraries, every transpose: A 37×253, B 253×29, each
// stored as its transpose flag says.
const [m, n, k] = [37, 29, 253];
let productDiff = 0;
for (const ta of [111, 112]) {
  for (const tb of [111, 112]) {
    const a = Float32Array.from({ length: k * m }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: k * n }, (_, i) => Math.cos(3 * i));
    const lda = ta === 112 ? m : k, ldb = tb === 112 ? k : n;
    const c1 = new Float32Array(m * n), c2 = new Float32Array(m * n);
    torch.sgemm(101, ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c1, n);
    open.sgemm(101, ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c2, n);
    for (let i = 0; i < c1.length; i++) {
      productDiff = Math.max(productDiff, Math.abs(c1[i] - c2[i]));
    }
  }
}

// Its thread control, set and restored.
const control = blasThreads(path);
const threadsBefore = control?.get();
control?.set(1);
const threadsHeld = control?.get();
control?.set(threadsBefore ?? 1);

// Three training steps of one small model on each library (two threads,
// split products: each thread calls the library held at one thread).
const config = validateConfig({
  kind: "causal",
  vocabSize: 61,
  contextLength: 16,
  nLayer: 2,
  nHead: 2,
  dModel: 32,
  dMlp: 64,
  positions: "rotary",
  timeConditioning: false,
  dTime: 8,
  dropout: 0,
});
async function losses(library: string): Promise<number[]> {
  Deno.env.set("D3PM_CBLAS_PATH", library);
  const engine = await CpuTransformer.create(config, {
    batchSize: 4,
    length: 16,
    seed: 3,
    threads: 2,
  });
  try {
    const out: number[] = [];
    for (let s = 0; s < 3; s++) {
      const ids = Int32Array.from(
        { length: 64 },
        (_, i) => (i * 7 + s * 13) % 61,
      );
      const targets = Int32Array.from(
        { length: 64 },
        (_, i) => ids[(i + 1) % 64],
      );
      engine.step({
        inputs: ids,
        targets,
        weights: new Float32Array(64).fill(1 / 64),
      }, 3e-3);
      out.push((await engine.readLoss()).loss);
    }
    return out;
  } finally {
    engine.dispose();
    Deno.env.delete("D3PM_CBLAS_PATH");
  }
}
const torchLosses = await losses(path);
const openLosses = await losses(open.library);

console.log(JSON.stringify({
  vendor: torch.vendor,
  openVendor: open.vendor,
  entry: torch.entry,
  description: torch.description,
  productDiff,
  threadControl: control !== null,
  threadsHeld,
  torchLosses,
  openLosses,
}));
torch.close();
open.close();
