/**
 * The CPU engine's WebAssembly kernels against the same kernels of another
 * revision (issue 23): both modules instantiated on one shared memory in one
 * process, each kernel called on one thread at one thread's share of the
 * tiny training step (GELU and SiLU rows of 512 columns, 64 rows of a
 * 128 × 4096 logits chunk for the cross-entropy, 16 heads × 128 rows for the
 * attention softmax — causal, and bidirectional with ALiBi —, dropout's
 * backward and a residual with dropout, LayerNorm rows, half the columns of
 * a bias or LayerNorm gradient, AdamW over half the parameters), the two
 * modules alternating round by round, medians. Also whether the two
 * modules' outputs are the same bits (a kernel that updates state in place
 * gets its state restored before the compared calls). JSON lines.
 *
 *   deno task bench:cpu-kernels [--against main] [--rounds 15] [--reps 10]
 */
import { readCommandLine } from "@d3pm/cli";
import { median } from "./_measure.ts";

const USAGE = {
  command: "deno task bench:cpu-kernels",
  summary:
    `Times the working tree's CPU kernels (cpu/_wasm.ts) against another git
revision's on one thread, alternating, and says whether their outputs are the
same bits. Prints JSON lines.`,
  options: {
    against: {
      kind: "string",
      default: "main",
      help: "the git revision whose cpu/_wasm.ts is the baseline",
    },
    rounds: { kind: "integer", min: 1, default: 15, help: "alternations" },
    reps: { kind: "integer", min: 1, default: 10, help: "calls per round" },
  },
} as const;

const args = readCommandLine(Deno.args, USAGE, { usageExit: 2 }).values;

function decode(b64: string): Uint8Array<ArrayBuffer> {
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

// The base64 module of cpu/_wasm.ts at a revision (its string literals).
async function moduleAt(rev: string): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("git", {
      args: ["show", `${rev}:cpu/_wasm.ts`],
      cwd: new URL("..", import.meta.url),
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    console.error(
      `error: Option --against ${rev} reads cpu/_wasm.ts at a git revision, and git is not installed; install git, or leave --against out`,
    );
    Deno.exit(2);
  }
  if (!out.success) {
    console.error(
      `error: Option --against ${rev}: no cpu/_wasm.ts at that revision (${
        new TextDecoder().decode(out.stderr).trim()
      }); accepted: a git revision of this repository, e.g. main`,
    );
    Deno.exit(2);
  }
  return moduleOf(new TextDecoder().decode(out.stdout));
}

// The base64 module in the text of a cpu/_wasm.ts (its string literals):
// the file is read, as the other revision's is, not imported (it is private
// to @d3pm/cpu).
function moduleOf(text: string): string {
  const body = text.slice(text.indexOf("WASM_BASE64"));
  return [...body.matchAll(/"([A-Za-z0-9+/=]+)"/g)].map((m) => m[1]).join("");
}

// The working tree's module.
const treeModule = moduleOf(
  await Deno.readTextFile(new URL("../cpu/_wasm.ts", import.meta.url)),
);

type Exports = Record<string, (...a: number[]) => void>;

const memory = new WebAssembly.Memory({
  initial: 1024,
  maximum: 65536,
  shared: true,
});
async function instantiate(b64: string): Promise<Exports> {
  const instance = await WebAssembly.instantiate(
    new WebAssembly.Module(decode(b64)),
    { env: { memory, log: Math.log } },
  );
  return instance.exports as Exports;
}
const modules = [
  { name: "tree", exports: await instantiate(treeModule) },
  {
    name: args.against,
    exports: await instantiate(await moduleAt(args.against)),
  },
];

// Layout (bytes): inputs X and SRC, outputs OUT, small vectors.
const F = new Float32Array(memory.buffer), I = new Int32Array(memory.buffer);
const N = 1 << 18;
const X = 1 << 20, SRC = X + 4 * N, OUT = SRC + 4 * N, SMALL = OUT + 4 * N;
const TARGETS = SMALL, WEIGHTS = SMALL + 4096, LOSS = SMALL + 8192;
for (let i = 0; i < N; i++) {
  F[X / 4 + i] = 3 * Math.sin(i);
  F[SRC / 4 + i] = 4 * Math.cos(0.37 * i);
}
for (let i = 0; i < 64; i++) {
  I[TARGETS / 4 + i] = (7 * i) % 4096;
  F[WEIGHTS / 4 + i] = 1 / 64;
}
// Mean and rstd of the LayerNorm case: 512 rows, positive rstd.
const MEAN = SMALL + 12288, RSTD = MEAN + 4 * 512;
for (let r = 0; r < 512; r++) {
  F[MEAN / 4 + r] = 0.1 * Math.sin(r);
  F[RSTD / 4 + r] = 1 + 0.5 * Math.cos(r);
}
// AdamW over one thread's half of the tiny step's 1.33M parameters (m, v
// right after p's gradient).
const PN = 665_600, PP = RSTD + 4 * 512, PG = PP + 4 * PN, PM = PG + 4 * PN;
const PV = PM + 4 * PN;
for (let i = 0; i < PN; i++) F[PG / 4 + i] = 1e-3 * Math.cos(0.7 * i);
const copy = (from: number, floats: number) =>
  F.copyWithin(OUT / 4, from / 4, from / 4 + floats);

interface Case {
  kernel: string;
  shape: string;
  run: (e: Exports) => void;
  /** Restores the state a stateful kernel updates (before the compared calls). */
  reset?: () => void;
}

// The attention softmax over 16 heads of 128×128 scores.
function softmaxCase(
  name: string,
  causal: number,
  slope: number,
  mode: number,
): Case {
  return {
    kernel: `attention_softmax_forward (${name})`,
    shape: "16 heads × 128×128",
    run: (e) => {
      copy(SRC, 16 * 128 * 128);
      e.attention_softmax_forward(
        0,
        16 * 128,
        128,
        4,
        causal,
        OUT,
        LOSS,
        slope,
        mode,
        0,
        0,
        0,
        0,
      );
    },
  };
}

const cases: Case[] = [
  {
    kernel: "activation_rows (gelu)",
    shape: "256×512",
    run: (e) => e.activation_rows(0, 256, 512, X, 512, OUT, 512, 0, 0),
  },
  {
    kernel: "activation_backward_rows (gelu)",
    shape: "256×512",
    run: (e) => {
      F.fill(1, OUT / 4, OUT / 4 + 256 * 512);
      e.activation_backward_rows(0, 256, 512, OUT, 512, X, 512, 0);
    },
  },
  {
    kernel: "activation_backward_rows (silu)",
    shape: "256×512",
    run: (e) => {
      F.fill(1, OUT / 4, OUT / 4 + 256 * 512);
      e.activation_backward_rows(0, 256, 512, OUT, 512, X, 512, 1);
    },
  },
  {
    kernel: "cross_entropy",
    shape: "64×4096",
    run: (e) => {
      copy(SRC, 64 * 4096);
      e.cross_entropy(0, 64, 4096, OUT, TARGETS, WEIGHTS, LOSS, 0xffffffff);
    },
  },
  softmaxCase("causal", 1, 0, 0),
  softmaxCase("bidirectional, ALiBi neighbours 16", 0, 16, 1),
  {
    kernel: "dropout_backward (rate 0.1)",
    shape: "256×512",
    run: (e) => e.dropout_backward(0, 256 * 512, SRC, OUT, 7, 4096, 0.1),
  },
  {
    kernel: "residual_rows (dropout 0.1)",
    shape: "256×128",
    reset: () => copy(SRC, 256 * 128),
    run: (e) =>
      e.residual_rows(0, 256, 128, OUT, 128, SRC, X, 128, 7, 4096, 0.1),
  },
  {
    kernel: "layernorm_forward",
    shape: "256×128",
    run: (e) =>
      e.layernorm_forward(
        0,
        256,
        128,
        X,
        OUT,
        X,
        SRC,
        LOSS,
        LOSS + 1024,
        0,
        0,
        1,
      ),
  },
  {
    kernel: "layernorm_backward",
    shape: "256×128",
    run: (e) =>
      e.layernorm_backward(0, 256, 128, SRC, X, MEAN, RSTD, X, OUT, 0),
  },
  {
    kernel: "column_sum",
    shape: "512 rows × 256 of 512 columns",
    run: (e) => e.column_sum(0, 256, 512, 512, SRC, OUT),
  },
  {
    kernel: "layernorm_params_backward",
    shape: "512 rows × 64 of 128 columns",
    run: (e) =>
      e.layernorm_params_backward(
        0,
        64,
        512,
        128,
        SRC,
        X,
        MEAN,
        RSTD,
        OUT,
        OUT + 4 * 128,
      ),
  },
  {
    kernel: "adamw",
    shape: `${PN} parameters`,
    reset: () => {
      for (let i = 0; i < PN; i++) F[PP / 4 + i] = 0.02 * Math.sin(i);
      F.fill(0, PM / 4, PM / 4 + 2 * PN);
    },
    run: (e) => {
      e.adamw(
        0,
        PN,
        PN / 2,
        PP,
        PG,
        PM,
        PV,
        0.9,
        0.95,
        1e-8,
        0.1,
        3e-4,
        0.1,
        0.05,
        1,
      );
      // The first 4 MB of the updated parameters are compared.
      F.copyWithin(OUT / 4, PP / 4, PP / 4 + N);
    },
  },
];

for (const c of cases) {
  const ms: number[][] = modules.map(() => []);
  const outs: Float32Array[] = [];
  for (let round = 0; round < args.rounds + 1; round++) {
    modules.forEach((m, i) => {
      if (round === 0) c.reset?.();
      const t0 = performance.now();
      for (let r = 0; r < args.reps; r++) c.run(m.exports);
      // Round 0 warms up; its outputs are compared.
      if (round === 0) outs[i] = F.slice(OUT / 4, OUT / 4 + N);
      else ms[i].push((performance.now() - t0) / args.reps);
    });
  }
  const [tree, base] = ms.map(median);
  let differing = 0;
  for (let j = 0; j < N; j++) {
    if (!Object.is(outs[0][j], outs[1][j])) differing++;
  }
  console.log(JSON.stringify({
    kernel: c.kernel,
    shape: c.shape,
    ms_tree: Math.round(tree * 1e4) / 1e4,
    [`ms_${args.against}`]: Math.round(base * 1e4) / 1e4,
    speedup: Math.round((base / tree) * 1000) / 1000,
    same_bits: differing === 0,
  }));
}
