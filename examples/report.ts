/**
 * The run report: `report.md` with tables laid out like the thesis's, plus
 * `loss.svg` (training curves) and `speed_quality.svg`.
 *
 * @module
 */
import {
  fixed,
  lineChart,
  markdownTable,
  MetricsLog,
  type Series,
  summarize,
} from "./_deps.ts";
import type { ExperimentResult, ModelResult } from "./run.ts";

const THESIS =
  "Thesis (WikiText-103, 124M parameters, GPT-2 tokens): AR BPT 4.60; D3PM BPT mean 8.06, best 5.72, " +
  "range 5.72–9.41; generation 1.68 (AR) vs 3.97 (D3PM) batches/s at batch size 4.";

/**
 * Write `report.md`, `loss.svg` and `speed_quality.svg` into `dir`.
 *
 * @param r The run's results.
 * @param dir The run folder (holding `metrics.jsonl`).
 */
export async function writeReport(
  r: ExperimentResult,
  dir: string,
): Promise<void> {
  const c = r.config;
  const name = (
    m: ModelResult,
  ) => (m.model === "ar" ? "AR (causal)" : "D3PM (absorbing, MDLM loss)");
  const le = (m: ModelResult) => (m.test.bound ? "≤ " : "");
  const perSeed = markdownTable(
    [
      "Model",
      "Seed",
      "BPT",
      "NLL (nats)",
      "PPL",
      "bits/byte",
      "batches/s",
      "tokens/s",
      "gen PPL (AR judge)",
      "entropy",
    ],
    r.results.map((m) => [
      name(m),
      m.seed,
      `${le(m)}${fixed(m.test.bpt)}`,
      `${le(m)}${fixed(m.test.nll)}${
        m.test.stderr !== undefined ? ` ± ${fixed(m.test.stderr, 3)}` : ""
      }`,
      `${le(m)}${fixed(m.test.ppl, 1)}`,
      `${le(m)}${fixed(m.test.bpb, 3)}`,
      fixed(m.speed.batchesPerSecond, 3),
      fixed(m.speed.tokensPerSecond, 0),
      fixed(m.quality.genPpl, 1),
      fixed(m.quality.entropy, 2),
    ]),
  );
  const summaryRows = (["ar", "d3pm"] as const).map((kind) => {
    const rows = r.results.filter((m) => m.model === kind);
    const bpt = summarize(rows.map((m) => m.test.bpt));
    const speed = summarize(rows.map((m) => m.speed.batchesPerSecond));
    const p = kind === "d3pm" ? "≤ " : "";
    return [
      kind === "ar" ? "AR" : "D3PM",
      bpt.n,
      `${p}${fixed(bpt.mean)} ± ${fixed(bpt.sd)}`,
      `${p}${fixed(bpt.min)}`,
      `${fixed(bpt.min)}–${fixed(bpt.max)}`,
      fixed(speed.mean, 3),
    ];
  });
  const summary = markdownTable([
    "Model",
    "Seeds",
    "BPT mean ± sd",
    "best",
    "range",
    "batches/s (mean)",
  ], summaryRows);

  const d3 = r.results.filter((m) => m.model === "d3pm");
  const exactRows = d3.filter((m) => m.exact).map((m) => [
    m.seed,
    `≤ ${fixed(m.test.nll, 3)} ± ${fixed(m.test.stderr, 3)}`,
    `≤ ${fixed(m.exact!.nll, 3)} ± ${fixed(m.exact!.stderr, 3)} (${
      m.exact!.tokens
    } tokens)`,
  ]);
  const curveRows = d3.flatMap((m) =>
    m.curve!.map((p) => [
      m.seed,
      p.steps,
      fixed(p.speed.forwardPassesPerBatch, 1),
      fixed(p.speed.batchesPerSecond, 3),
      fixed(p.speed.tokensPerSecond, 0),
      fixed(p.genPpl, 1),
      fixed(p.entropy, 2),
    ])
  );
  const ar = r.results.filter((m) => m.model === "ar");
  const arCurveRows = ar.map((m) => [
    m.seed,
    "AR",
    "–",
    fixed(m.speed.batchesPerSecond, 3),
    fixed(m.speed.tokensPerSecond, 0),
    fixed(m.quality.genPpl, 1),
    fixed(m.quality.entropy, 2),
  ]);
  const genBatches = r.results[0]?.speed.batches ?? 0;
  const md = `# AR vs D3PM — ${c.preset} preset

Command: \`deno task experiment --preset ${c.preset} --seeds ${c.seeds}\` (full configuration in \`config.json\`).
Backend: ${r.backend}. Tokenizer: \`${r.tokenizer.id}\` (${r.tokenizer.vocabSize} ids). Data: ${r.data.source} —
${r.data.trainTokens} train tokens, ${r.data.testTokens} test tokens, ${
    fixed(r.data.bytesPerToken, 3)
  } bytes/token;
unigram entropy of the train split ${fixed(r.data.unigramEntropy, 3)} nats (${
    fixed(r.data.unigramEntropy / Math.LN2)
  } bits) per token.
Models: ${c.nLayer} layers, d_model ${c.dModel}, ${c.nHead} heads, context ${c.blockLength},
${
    r.results[0]?.parameters ?? "?"
  } parameters each; ${c.steps} steps × ${c.batchSize} blocks × ${c.blockLength} tokens
(${
    c.steps * c.batchSize * c.blockLength
  } tokens) per model, matched. The run took ${
    fixed(r.seconds / 60, 1)
  } minutes.

## Likelihood and speed (per seed)

D3PM figures are upper bounds (Monte-Carlo continuous-time ELBO with its standard error, ${c.elboSamples}
draw(s) per test block); AR figures are exact. BPT = NLL / ln 2, PPL = e^NLL. AR scores tokens 2..L of each
test block, D3PM all L. Speed: generating ${genBatches} batches of ${c.genBatch} × ${c.blockLength} tokens
(${genBatches * c.genBatch * c.blockLength} tokens${
    genBatches * c.genBatch * c.blockLength < 100000
      ? "; the thesis generates 100K — this preset generates fewer to fit its time"
      : ""
  }); D3PM at ${d3[0]?.curve?.at(-1)?.steps ?? "?"} steps.

${perSeed}

## Across seeds

${summary}

${THESIS}

## Exact discrete bound vs Monte-Carlo continuous bound (D3PM)

Exact: all T = ${c.diffusionSteps} terms plus the prior term, on the first ${c.exactBlocks} test block(s).

${
    exactRows.length
      ? markdownTable([
        "Seed",
        "continuous (all eval blocks)",
        "exact discrete",
      ], exactRows)
      : "(skipped: --exact-blocks 0)"
  }

## Speed vs quality

Generative perplexity of samples under the trained AR model (lower is better) is shown with the samples'
mean per-sample token entropy (very low entropy means repetitive text that fools generative perplexity).

${
    markdownTable([
      "Seed",
      "D3PM steps",
      "forward passes",
      "batches/s",
      "tokens/s",
      "gen PPL",
      "entropy",
    ], [...arCurveRows, ...curveRows])
  }

![speed vs quality](speed_quality.svg)

## Infilling (D3PM)

${
    markdownTable(
      ["Seed", "hidden", "exact-match accuracy", "NLL of hidden tokens (nats)"],
      d3.map((
        m,
      ) => [
        m.seed,
        `${m.infill!.hidden} (${fixed(100 * m.infill!.fraction, 0)}%)`,
        fixed(m.infill!.accuracy, 3),
        fixed(m.infill!.nll, 3),
      ]),
    )
  }

## Training

![loss curves](loss.svg)

${
    markdownTable(
      ["Model", "Seed", "seconds", "tokens/s", "final train loss"],
      r.results.map((m) => [
        name(m),
        m.seed,
        fixed(m.training.seconds, 0),
        fixed(m.training.tokens / m.training.seconds, 0),
        fixed(m.training.lastLoss, 3),
      ]),
    )
  }

Samples: \`samples.txt\`. Per-step metrics: \`metrics.jsonl\`.
`;
  await Deno.writeTextFile(`${dir}/report.md`, md);

  const records = await MetricsLog.read(`${dir}/metrics.jsonl`);
  const series = new Map<string, [number, number][]>();
  for (const rec of records) {
    const key = `${String(rec.model).toUpperCase()} seed ${rec.seed}`;
    const pts = series.get(key) ?? [];
    // A resumed run appends steps again from its checkpoint: drop the steps it
    // redoes (linear over the log, however long the run).
    const step = Number(rec.step);
    while (pts.length > 0 && pts[pts.length - 1][0] >= step) pts.pop();
    pts.push([step, Number(rec.loss)]);
    series.set(key, pts);
  }
  const smooth = (pts: [number, number][]): [number, number][] => {
    const w = Math.max(1, Math.floor(pts.length / 50));
    return pts.map(([s], i) => {
      const win = pts.slice(Math.max(0, i - w + 1), i + 1);
      return [s, win.reduce((a, [, y]) => a + y, 0) / win.length];
    });
  };
  await Deno.writeTextFile(
    `${dir}/loss.svg`,
    lineChart(
      [...series].map(([name, pts]) => ({ name, points: smooth(pts) })),
      {
        title: "Training loss (AR: NLL; D3PM: MDLM bound), nats per token",
        xLabel: "step",
        yLabel: "loss (nats/token)",
      },
    ),
  );
  const sq: Series[] = d3.map((m) => ({
    name: `D3PM seed ${m.seed}`,
    points: m.curve!.map((p) =>
      [p.speed.tokensPerSecond, p.genPpl] as [number, number]
    ),
  }));
  for (const m of ar) {
    sq.push({
      name: `AR seed ${m.seed}`,
      points: [[m.speed.tokensPerSecond, m.quality.genPpl]],
    });
  }
  await Deno.writeTextFile(
    `${dir}/speed_quality.svg`,
    lineChart(sq, {
      title: "Generation speed vs sample quality",
      xLabel: "tokens/s generated (log)",
      yLabel: "gen PPL under the AR model",
      logX: true,
      markers: true,
    }),
  );
}
