// The Hugging Face interop checked by transformers itself (tests/python/
// hf_peer.py): Test A trains micro runs, exports every model and compares
// transformers' logits, greedy continuation and tokenization with the
// project's; Test B saves a GPT-2 (the real 124M configuration, random
// weights, nothing downloaded) with transformers, imports it and compares
// logits. Both need a python3 with torch and transformers
// (tools/setup_hf.sh); elsewhere they are skipped with the reason.
import * as tf from "@tensorflow/tfjs";
import { ignoreUnless } from "@d3pm/core/testing";
import { initBackend } from "@d3pm/backend";
import {
  AR,
  ConfigError,
  evaluationModel,
  loadTrained,
  readRun,
  releaseEvaluationModel,
} from "@d3pm/experiment";
import { BpeTokenizer, loadGpt2Tokenizer } from "@d3pm/tokenizer";
import { tokenizerFiles } from "@d3pm/hf";
import type { Transformer } from "@d3pm/transformer";
import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
} from "@std/assert";
import { askPython, findPython, readFloats } from "./_python.ts";
import {
  AR_FAST_EVAL,
  DENOISER_FAST_EVAL,
  FAST_EVAL,
  runTool,
} from "./_run.ts";

// The project's logits on the blas backend (CBLAS matmuls and the fused
// kernels, as `auto` picks on a CPU; each kernel is checked against tfjs's
// reference `cpu` kernels in backend/): those take several times the CPU
// for the 50,261-id heads.
async function onBlas(): Promise<void> {
  await initBackend({ prefer: "blas", log: () => {} });
}

const peer = findPython();
const ignore = ignoreUnless("torch", peer.missing);
const TOLERANCE = 1e-4;

/** Largest |a − b| over `b`'s columns of each row of `a` (a may have more columns). */
function maxDiff(
  a: Float32Array,
  b: Float32Array,
  rowsA: number,
  colsA: number,
  colsB: number,
): number {
  let worst = 0;
  for (let r = 0; r < rowsA; r++) {
    for (let c = 0; c < colsB; c++) {
      const d = Math.abs(a[r * colsA + c] - b[r * colsB + c]);
      if (!(d <= worst)) worst = d; // NaN propagates
    }
  }
  return worst;
}

async function projectLogits(
  model: Transformer,
  ids: number[][],
  t?: number[],
): Promise<Float32Array> {
  const tokens = tf.tensor2d(ids, [ids.length, ids[0].length], "int32");
  const time = t ? tf.tensor1d(t) : undefined;
  const logits = model.forward(tokens, time ? { t: time } : {});
  const values = await logits.data() as Float32Array;
  tf.dispose([tokens, logits, ...(time ? [time] : [])]);
  return values;
}

/** The project's greedy continuation: argmax of the last position, never a suppressed id, stopping at `eos`. */
async function projectGreedy(
  model: Transformer,
  prompt: number[],
  steps: number,
  suppress: number[],
  eos: number,
): Promise<number[]> {
  const ids = [...prompt];
  for (let s = 0; s < steps; s++) {
    const logits = await projectLogits(model, [ids]);
    const V = model.config.vocabSize;
    const last = logits.subarray((ids.length - 1) * V, ids.length * V);
    let best = -1;
    for (let v = 0; v < V; v++) {
      if (suppress.includes(v)) continue;
      if (best < 0 || last[v] > last[best]) best = v;
    }
    ids.push(best);
    if (best === eos) break;
  }
  return ids.slice(prompt.length);
}

const TEXT =
  " = Valkyria Chronicles III = \n\n Senjō no Valkyria 3 : Unrecorded Chronicles ( Japanese : 戦場のヴァルキュリア3 , lit . Valkyria of the Battlefield 3 ) , commonly referred to as Valkyria Chronicles III outside Japan , is a tactical role @-@ playing video game developed by Sega and Media.Vision for the PlayStation Portable . Released in January 2011 in Japan , it is the third game in the Valkyria series .  Naïve café — 1,000 €\t\ttabs  and   spaces \n";

Deno.test({
  name:
    "Test A: every model of micro runs exports to a directory transformers loads, with the project's logits (≤ 1e-4), greedy continuation and tokenization",
  ignore,
  async fn(t) {
    await onBlas();
    const root = await Deno.makeTempDir({ prefix: "hf-test-a-" });
    const common = [
      "--preset",
      "micro",
      "--warmup",
      "5",
      "--judge",
      "self",
      "--exact-blocks",
      "0",
      ...AR_FAST_EVAL,
      // The run's figures are not what this test checks: gen PPL of the
      // last timed batch alone, not of 64 generated rows more.
      "--gen-samples",
      "0",
    ];
    const steps = (n: number, batch: number) => [
      "--steps",
      String(n),
      "--batch-size",
      String(batch),
      "--checkpoint-every",
      String(n),
      "--valid-every",
      String(n / 2),
    ];
    // L: learned positions, a time-conditioned D3PM, the MLM; bytes.
    // R: rotary positions, an ALiBi D3PM looking at its neighbours; a BPE.
    // G: GPT-2's tokenizer (few steps: its 50,261-row head is slow on a CPU).
    const runs = {
      L: [
        ...steps(40, 16),
        ...DENOISER_FAST_EVAL,
        "--positions",
        "learned",
        "--time-conditioning",
        "true",
        "--models",
        "ar,d3pm,mlm",
      ],
      R: [
        ...steps(40, 16),
        ...DENOISER_FAST_EVAL,
        "--positions",
        "rotary",
        "--alibi",
        "4",
        "--alibi-mode",
        "neighbours",
        "--tokenizer",
        "bpe",
        "--vocab-size",
        "300",
      ],
      G: [
        ...steps(20, 2),
        "--positions",
        "learned",
        "--tokenizer",
        "gpt2",
        "--models",
        "ar",
      ],
    };
    interface Case {
      label: string;
      run: string;
      kind: string;
      ids: number[][];
      time?: number[];
      text: string;
      request: Record<string, unknown>;
    }
    // Train, export and make the inputs of every model: the three runs
    // side by side (their own folders), each's exports after it.
    const prepare = async (name: string, extra: string[]) => {
      const cases: Case[] = [];
      const run = `${root}/run-${name}`;
      const trained = await runTool("experiment.ts", [
        ...common,
        ...extra,
        "--out",
        run,
      ]);
      assertEquals(trained.code, 0, trained.stderr);
      const { config } = await readRun(run);
      for (const kind of config.models.split(",")) {
        const out = `${root}/export-${name}-${kind}`;
        const exported = await runTool("export.ts", [
          "--run",
          run,
          "--model",
          kind,
          "--to",
          out,
        ]);
        assertEquals(exported.code, 0, exported.stderr);
        const { model, tokenizer, contestant } = await loadTrained(run, {
          model: kind,
        });
        const { bos, mask } = tokenizer.special as Required<
          typeof tokenizer.special
        >;
        const T = model.config.contextLength;
        const encoded = [...tokenizer.encode(TEXT)];
        const row0 = [bos, ...encoded].slice(0, T);
        const row1 = encoded.slice(T, 2 * T);
        const causal = contestant.network === "causal";
        if (!causal) {
          // Blanks where a denoiser sees them.
          for (let i = 3; i < T; i += 3) row0[i] = mask;
          for (let i = 0; i < T; i += 2) row1[i] = mask;
        }
        const time = model.config.timeConditioning ? [0.3, 0.85] : undefined;
        // A BPE's special tokens are matched in text (allowSpecial);
        // <|endoftext|> is one in GPT-2's vocabulary only.
        const text = tokenizer instanceof BpeTokenizer
          ? `${TEXT}<|endoftext|> then <|mask|> and <|eos|>`
          : TEXT;
        model.dispose();
        const label = `${name}/${kind}`;
        cases.push({
          label,
          run,
          kind,
          ids: [row0, row1],
          time,
          text,
          request: {
            op: "logits",
            dir: out,
            ids: [row0, row1],
            out: `${root}/logits-${name}-${kind}.f32`,
            ...(time ? { t: time } : {}),
            ...(causal ? { prompt: 6, new: 12 } : {}),
            text,
          },
        });
      }
      return cases;
    };
    const cases = (await Promise.all(
      Object.entries(runs).map(([name, extra]) => prepare(name, extra)),
    )).flat();
    // transformers' side, in one interpreter.
    const replies = await askPython(peer.python!, cases.map((c) => c.request));
    const results: string[] = [];
    for (const [i, c] of cases.entries()) {
      await t.step(c.label, async () => {
        const reply = replies[i];
        const { model, tokenizer, contestant } = await loadTrained(c.run, {
          model: c.kind,
        });
        try {
          const { eos, pad, mask } = tokenizer.special as Required<
            typeof tokenizer.special
          >;
          const causal = contestant.network === "causal";
          const expectedClass = !causal
            ? "D3PMForMaskedLM"
            : model.config.positions === "learned"
            ? "GPT2LMHeadModel"
            : "GPTNeoXForCausalLM";
          assertEquals(reply.class, expectedClass);
          assertEquals(reply.auto_class, expectedClass);
          assertEquals(reply.tokenizer_ids, tokenizer.vocabSize);
          const V = model.config.vocabSize;
          const ours = await projectLogits(model, c.ids, c.time);
          const theirs = await readFloats(c.request.out as string);
          assertEquals(theirs.length, ours.length);
          const rows = c.ids.length * c.ids[0].length;
          const diff = maxDiff(ours, theirs, rows, V, V);
          results.push(
            `${c.label} ${expectedClass}: max |Δ| ${diff.toExponential(2)}`,
          );
          assert(diff <= TOLERANCE, `max |Δ| ${diff} > ${TOLERANCE}`);
          if (causal) {
            const greedy = await projectGreedy(
              model,
              c.ids[0].slice(0, 6),
              12,
              [pad, mask],
              eos,
            );
            assertEquals(reply.greedy, greedy);
          }
          const encoded = tokenizer instanceof BpeTokenizer
            ? tokenizer.encode(c.text, { allowSpecial: true })
            : tokenizer.encode(c.text);
          assertEquals(reply.encoded, [...encoded]);
          assertEquals(reply.decoded, tokenizer.decode(encoded));
        } finally {
          model.dispose();
        }
      });
    }
    console.log(`Test A (tolerance ${TOLERANCE}):\n  ${results.join("\n  ")}`);
    await Deno.remove(root, { recursive: true });
  },
});

async function writeGpt2Tokenizer(dir: string): Promise<void> {
  // GPT-2's own two files, as a Hub directory has them (no added tokens).
  const files = tokenizerFiles(await loadGpt2Tokenizer(), {
    contextLength: 1024,
  });
  await Deno.writeTextFile(`${dir}/vocab.json`, files.get("vocab.json")!);
  await Deno.writeTextFile(`${dir}/merges.txt`, files.get("merges.txt")!);
}

// What Tests B, C and D ask of transformers before they import anything:
// the GPT-2s it saves (one per test's case) and their logits. One Python
// peer makes them all and then computes the logits (one torch start-up,
// not three: each takes seconds of CPU); each test reads its own folder
// under `root` and writes only in folders of its own.
const B_IDS = [
  [50256, 464, 983, 2540, 2478, 287, 3050, 764, 383, 318, 257, 1332],
  [15496, 995, 11, 428, 318, 257, 1332, 286, 262, 2746, 13, 50256],
];
// Test B: the 124M model; 2-layer ones in float16, bfloat16 and float32,
// and the same float32 weights as an old pytorch_model.bin (GPT2Model's
// names, attn.bias buffers).
const B_MADE = {
  "124M": { dtype: "float32", format: "safetensors" },
  float16: { dtype: "float16", format: "safetensors", n_layer: 2 },
  bfloat16: { dtype: "bfloat16", format: "safetensors", n_layer: 2 },
  "2-layer": { dtype: "float32", format: "safetensors", n_layer: 2 },
  "2-layer-bin": {
    dtype: "float32",
    format: "bin",
    n_layer: 2,
    old_names: true,
  },
};
// transformers' logits: float16 and bfloat16 weights loaded as float32
// (transformers' own conversion), the .bin compared with the same weights
// saved as safetensors.
const B_COMPARED: [string, string, string | undefined][] = [
  ["124M", "124M", undefined],
  ["float16", "float16", "float32"],
  ["bfloat16", "bfloat16", "float32"],
  ["2-layer-bin", "2-layer", undefined],
];
// A one-layer GPT-2 small enough to train a step of (Test C: no tokenizer
// files, imported with --tokenizer gpt2) or to score prefix by prefix
// (Test D).
const SMALL = {
  dtype: "float32",
  format: "safetensors",
  n_layer: 1,
  n_embd: 32,
  n_head: 2,
  n_positions: 32,
};
// Test D's ids as the project's data packs documents ([bos] ids [eos]);
// the same for GPT-2, whose <|endoftext|> plays both parts.
const [BOS, EOS, EOT] = [50257, 50258, 50256];
const D_OURS = [
  BOS,
  464,
  983,
  2540,
  2478,
  287,
  EOS,
  BOS,
  15496,
  995,
  11,
  428,
  318,
  EOS,
  BOS,
  257,
];
const D_THEIRS = D_OURS.map((id) => id === BOS || id === EOS ? EOT : id);

let peerMade: Promise<{ root: string; cParameters: number }> | undefined;
function madeByTransformers(): Promise<{ root: string; cParameters: number }> {
  return peerMade ??= (async () => {
    const root = await Deno.makeTempDir({ prefix: "hf-made-" });
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(root, { recursive: true });
      } catch {
        // already gone
      }
    });
    const b = (name: string) => `${root}/b/hf-${name}`;
    // GPT-2's tokenizer files first: transformers' logits load them too.
    for (const dir of [...Object.keys(B_MADE).map(b), `${root}/d/hf`]) {
      await Deno.mkdir(dir, { recursive: true });
      await writeGpt2Tokenizer(dir);
    }
    const replies = await askPython(peer.python!, [
      ...Object.entries(B_MADE).map(([name, r]) => ({
        op: "make_gpt2",
        dir: b(name),
        seed: 7,
        ...r,
      })),
      { op: "make_gpt2", dir: `${root}/c/hf`, seed: 3, ...SMALL },
      // <|endoftext|> about 12 nats above the rest everywhere, as a
      // trained GPT-2 puts it at a document's end (most of the mass there).
      { op: "make_gpt2", dir: `${root}/d/hf`, seed: 5, ...SMALL, eot: 12 },
      ...B_COMPARED.map(([name, reference, dtype]) => ({
        op: "logits",
        dir: b(reference),
        ids: B_IDS,
        out: `${root}/b/${name}.f32`,
        ...(dtype ? { dtype } : {}),
      })),
      {
        op: "logits",
        dir: `${root}/d/hf`,
        ids: [D_THEIRS],
        out: `${root}/d/logits.f32`,
      },
    ]);
    const count = Object.keys(B_MADE).length;
    return {
      root,
      cParameters: (replies[count] as { parameters: number }).parameters,
    };
  })();
}

Deno.test({
  name:
    "Test B: a GPT-2 saved by transformers (124M configuration, random weights; f16, bf16 and an old pytorch_model.bin too) imports with its logits (≤ 1e-4)",
  ignore,
  async fn(t) {
    // The project's logits on the blas backend (CBLAS matmuls, as `auto`
    // picks on a CPU): the 124M forward takes seconds on the reference
    // `cpu` kernels (0.8 GFLOP/s), which tests/backend check it against.
    await initBackend({ prefer: "blas", log: () => {} });
    const made = await madeByTransformers();
    const root = await Deno.makeTempDir({ prefix: "hf-test-b-" });
    const ids = B_IDS;
    const dir = (name: string) => `${made.root}/b/hf-${name}`;
    const run = (name: string) => `${root}/run-${name}`;
    const compared = B_COMPARED;
    const imported = (name: string) =>
      runTool("import.ts", ["--from", dir(name), "--to", run(name)]).then(
        (r) => assertEquals(r.code, 0, `${name}: ${r.stderr}`),
      );
    // The 124M import alone (its wall time is reported), then the small
    // ones side by side (their own folders).
    const started = performance.now();
    await imported("124M");
    const seconds = (performance.now() - started) / 1000;
    await Promise.all(
      Object.keys(B_MADE).filter((name) => name !== "124M").map(imported),
    );
    const lines = [
      `124M import: ${seconds.toFixed(1)} s (deno task import, wall)`,
    ];
    for (const [name] of compared) {
      await t.step(name, async () => {
        const { model } = await loadTrained(run(name), { model: "ar" });
        try {
          assertEquals(model.config.vocabSize, 50261);
          const ours = await projectLogits(model, ids);
          const theirs = await readFloats(`${made.root}/b/${name}.f32`);
          const diff = maxDiff(ours, theirs, 2 * ids[0].length, 50261, 50257);
          lines.push(`${name}: max |Δ| ${diff.toExponential(2)}`);
          assert(diff <= TOLERANCE, `${name}: max |Δ| ${diff} > ${TOLERANCE}`);
        } finally {
          model.dispose();
        }
      });
    }
    await t.step(
      "the old pytorch_model.bin gives the very weights of its safetensors twin",
      async () => {
        const a = await Deno.readFile(
          `${run("2-layer")}/seed-0/ar/model.safetensors`,
        );
        const b = await Deno.readFile(
          `${run("2-layer-bin")}/seed-0/ar/model.safetensors`,
        );
        assertEquals(a, b);
        const record = JSON.parse(
          await Deno.readTextFile(`${run("2-layer-bin")}/import.json`),
        );
        assertEquals(record.format, "pytorch");
        // attn.bias and attn.masked_bias of 2 layers
        assertEquals(record.droppedTensors.length, 4);
      },
    );
    await t.step(
      "exported again, its next-token distribution in transformers (generation_config.json applied) is the project's: <|endoftext|>'s copies <|bos|>/<|eos|> and <|pad|>/<|mask|> at -inf",
      async () => {
        const again = `${root}/again-2-layer`;
        const r = await runTool("export.ts", [
          "--run",
          run("2-layer"),
          "--to",
          again,
        ]);
        assertEquals(r.code, 0, r.stderr);
        const [reply] = await askPython(peer.python!, [
          { op: "next", dir: again, ids, out: `${root}/next.f32` },
        ]);
        assertEquals(reply.eos_token_id, [50258, 50256]);
        assertEquals(reply.suppress_tokens, [50257, 50258, 50259, 50260]);
        const theirs = await readFloats(`${root}/next.f32`);
        const { model } = await loadTrained(run("2-layer"), { model: "ar" });
        try {
          const V = 50261, T = ids[0].length, base = 50257;
          const logits = await projectLogits(model, ids);
          let worst = 0;
          for (let b = 0; b < ids.length; b++) {
            // The project's scoring softmax: over the base ids only.
            const last = logits.subarray((b * T + T - 1) * V, (b * T + T) * V);
            let max = -Infinity, sum = 0;
            for (let v = 0; v < base; v++) max = Math.max(max, last[v]);
            for (let v = 0; v < base; v++) sum += Math.exp(last[v] - max);
            const lse = max + Math.log(sum);
            for (let v = 0; v < V; v++) {
              const got = theirs[b * V + v];
              if (v >= base) {
                assertEquals(got, -Infinity, `row ${b}, id ${v}`);
                continue;
              }
              const d = Math.abs(got - (last[v] - lse));
              if (!(d <= worst)) worst = d;
            }
          }
          lines.push(
            `re-exported next-token log-softmax: max |Δ| ${
              worst.toExponential(2)
            }`,
          );
          assert(worst <= TOLERANCE, `max |Δ| ${worst} > ${TOLERANCE}`);
        } finally {
          model.dispose();
        }
      },
    );
    console.log(`Test B (tolerance ${TOLERANCE}):\n  ${lines.join("\n  ")}`);
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test({
  name:
    "--init-from and --judge an imported GPT-2: the D3PM starts from its weights (its first positions at a shorter block; one step moves none by more than the learning rate), its unknown training is not counted as the import's placeholder steps, and it judges the samples",
  ignore,
  async fn() {
    await tf.setBackend("cpu");
    const made = await madeByTransformers();
    const hf = `${made.root}/c/hf`;
    const root = await Deno.makeTempDir({ prefix: "hf-init-from-" });
    const src = `${root}/gpt2`, out = `${root}/run`;
    const imported = await runTool("import.ts", [
      "--from",
      hf,
      "--to",
      src,
      "--tokenizer",
      "gpt2",
    ]);
    assertEquals(imported.code, 0, imported.stderr);
    const r = await runTool("experiment.ts", [
      "--preset",
      "micro",
      "--tokenizer",
      "gpt2",
      "--models",
      "d3pm",
      "--init-from",
      src,
      "--positions",
      "learned",
      "--n-layer",
      "1",
      "--n-head",
      "2",
      "--d-model",
      "32",
      "--d-mlp",
      "128",
      "--block-length",
      "16",
      "--steps",
      "1",
      "--warmup",
      "0",
      // Judged by the imported GPT-2 itself (a context of 32 ≥ the block).
      "--judge",
      src,
      "--valid-every",
      "0",
      "--exact-blocks",
      "0",
      ...FAST_EVAL,
      // It judges the last timed batch (no 64 rows more, each a 50,261-id
      // head's sampling and scoring).
      "--gen-samples",
      "0",
      "--engine",
      "tfjs",
      "--out",
      out,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const { config, results } = await readRun(out);
    const initFrom = results!.results[0].training.initFrom!;
    // GPT-2's weights and the 4 rows the import adds (bos, eos, pad, mask).
    assertEquals(initFrom.parameters, made.cParameters + 4 * 32);
    assertEquals(initFrom.imported?.architecture, "GPT2LMHeadModel");
    assertEquals([initFrom.tokens, initFrom.flops], [undefined, undefined]);
    assertEquals(
      results!.judge,
      `GPT2LMHeadModel imported from ${hf} (deno task import, in ${src})`,
    );
    const genPpl = results!.results[0].generation!.genPpl;
    assert(Number.isFinite(genPpl) && genPpl > 1, `gen PPL ${genPpl}`);
    // One AdamW step moves a weight by at most lr (the sign of its first
    // gradient) plus lr · decay · |w|: every weight is the source's within
    // that, and some moved.
    const a = await loadTrained(src, { model: "ar" });
    const d = await loadTrained(out, { model: "d3pm" });
    let moved = 0;
    for (const [name, v] of d.model.variables) {
      const w = a.model.variables.get(name);
      if (!w) throw new Error(`${name}: not in the source`);
      // GPT-2's 32 learned positions, the block's first 16 of them.
      const x = v.dataSync(), y = w.dataSync().subarray(0, x.length);
      assertEquals(w.size, name === "wpe.weight" ? 2 * x.length : x.length);
      for (let i = 0; i < x.length; i++) {
        const step = Math.abs(x[i] - y[i]);
        const most = config.lr * (1 + config.weightDecay * Math.abs(y[i]));
        assert(step <= most * 1.001 + 1e-7, `${name}[${i}] moved ${step}`);
        if (step > 0) moved++;
      }
    }
    assert(moved > 1000, `${moved} weights moved`);
    // Blocks longer than its context (32): refused as a judge, in one line.
    const long = await runTool("experiment.ts", [
      "--preset",
      "micro",
      "--tokenizer",
      "gpt2",
      "--models",
      "d3pm",
      "--block-length",
      "64",
      "--judge",
      src,
      "--out",
      `${root}/long`,
    ]);
    assertEquals(long.code, 1, long.stderr);
    assertStringIncludes(
      long.stderr.trim().split("\n").at(-1)!,
      `Option --judge ${src}: that imported model (gpt2`,
    );
    assertStringIncludes(
      long.stderr,
      "context 32) cannot score this run's samples",
    );
    a.model.dispose();
    d.model.dispose();
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test({
  name:
    "An imported GPT-2 scores tokens as transformers does: its added special rows draw no probability, and <|eos|> at a document's end scores as <|endoftext|> (per token ≤ 2e-4 nats; tfjs and the CPU engine)",
  ignore,
  async fn() {
    await onBlas();
    // GPT-2's tokenizer files first (transformers' logits load it too),
    // then the peer made the model and computed its logits.
    const made = await madeByTransformers();
    const root = await Deno.makeTempDir({ prefix: "hf-mass-" });
    const [ours, theirs] = [D_OURS, D_THEIRS];
    const run = `${root}/run`;
    const r = await runTool("import.ts", [
      "--from",
      `${made.root}/d/hf`,
      "--to",
      run,
    ]);
    assertEquals(r.code, 0, r.stderr);
    const logits = await readFloats(`${made.root}/d/logits.f32`);
    const V = 50257, T = ours.length;
    // transformers' NLL of token k (1..T−1): its log-softmax, in float64.
    const reference = [0];
    for (let k = 1; k < T; k++) {
      const row = logits.subarray((k - 1) * V, k * V);
      const max = row.reduce((m, x) => Math.max(m, x), -Infinity);
      let sum = 0;
      for (const x of row) sum += Math.exp(x - max);
      reference.push(max + Math.log(sum) - row[theirs[k]]);
    }
    // GPT-2 puts most of a document's end on <|endoftext|>: the case where
    // copies of its row would take most.
    assert(reference[6] < Math.log(2), `p(<|endoftext|>) ${reference[6]}`);
    const { model, process } = await loadTrained(run, { model: AR });
    const placed = await evaluationModel(model, { kind: "cpu", reason: "cpu" });
    try {
      // The project's NLL of token k: the scoring API's sums over the
      // prefixes 0..k and 0..k−1 (evaluate's figure is their mean).
      const sums = [0];
      for (let k = 1; k < T; k++) {
        const x0 = {
          tokens: Int32Array.from(ours.slice(0, k + 1)),
          batchSize: 1,
          length: k + 1,
        };
        sums.push((await process.score(model, x0)).nats * k);
      }
      const lines: string[] = [];
      for (let k = 1; k < T; k++) {
        const nll = sums[k] - sums[k - 1];
        const d = Math.abs(nll - reference[k]);
        if (ours[k] === EOS) {
          lines.push(
            `token ${k} (<|eos|>): ours ${nll.toFixed(5)}, transformers ${
              reference[k].toFixed(5)
            }`,
          );
        }
        assert(d <= 2e-4, `token ${k} (${ours[k]}): |Δ| ${d}`);
      }
      const mean = reference.slice(1).reduce((a, b) => a + b) / (T - 1);
      const x0 = { tokens: Int32Array.from(ours), batchSize: 1, length: T };
      for (const [where, m] of [["tfjs", model], ["cpu", placed]] as const) {
        const nats = (await process.score(m, x0)).nats;
        lines.push(`mean (${where}): ${nats.toFixed(6)} vs ${mean.toFixed(6)}`);
        assert(Math.abs(nats - mean) <= TOLERANCE, `${where}: ${nats} ${mean}`);
      }
      // Its sampler never draws an added id.
      assertEquals(
        [...process.spec.suppress!, process.spec.padId].sort(),
        [50257, 50258, 50259, 50260],
      );
      console.log(`imported GPT-2's NLL:\n  ${lines.join("\n  ")}`);
    } finally {
      releaseEvaluationModel(placed);
      model.dispose();
    }
    // A folder imported before: its import record without a version and
    // its process without them is refused.
    const record = `${run}/import.json`;
    const { importVersion: ___, ...unversioned } = JSON.parse(
      await Deno.readTextFile(record),
    );
    await Deno.writeTextFile(record, JSON.stringify(unversioned));
    const path = `${run}/seed-0/ar/process.json`;
    const { outputs: _, alias: __, ...old } = JSON.parse(
      await Deno.readTextFile(path),
    );
    await Deno.writeTextFile(
      path,
      JSON.stringify({ ...old, suppress: [50260] }),
    );
    await assertRejects(
      () => loadTrained(run, { model: AR }),
      ConfigError,
      `${run} was imported before an imported model's added special rows were kept out of its softmax`,
    );
    await Deno.remove(root, { recursive: true });
  },
});
