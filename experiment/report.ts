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
  type Series,
  summarize,
} from "@d3pm/eval";
import { MetricsLog } from "@d3pm/train";
import type {
  D3pmResult,
  ExperimentResult,
  MlmResult,
  ModelResult,
} from "./results.ts";
import type { RunFolder } from "./run_folder.ts";

const THESIS =
  "Thesis (WikiText-103, 124M parameters, GPT-2 tokens): AR BPT 4.60; D3PM BPT mean 8.06, best 5.72, " +
  "range 5.72–9.41; generation 1.68 (AR) vs 3.97 (D3PM) batches/s at batch size 4.";

const NAME = {
  ar: "AR (causal)",
  d3pm: "D3PM (absorbing, MDLM loss)",
  mlm: "MLM (BERT objective, D3PM bound)",
};
const SHORT = { ar: "AR", d3pm: "D3PM", mlm: "MLM" };

const le = (m: ModelResult) => (m.test.bound ? "≤ " : "");
/** The validation figure is a bound for the D3PM only (the MLM's is its own loss). */
const vle = (m: ModelResult) => (m.model === "d3pm" ? "≤ " : "");

function d3pmResults(r: ExperimentResult): D3pmResult[] {
  return r.results.filter((m): m is D3pmResult => m.model === "d3pm");
}

function mlmResults(r: ExperimentResult): MlmResult[] {
  return r.results.filter((m): m is MlmResult => m.model === "mlm");
}

/** The model kinds of a run, in training order. */
function kindsOf(r: ExperimentResult): ModelResult["model"][] {
  return (["ar", "d3pm", "mlm"] as const).filter((k) =>
    r.results.some((m) => m.model === k)
  );
}

function header(r: ExperimentResult): string {
  const c = r.config, d = r.data;
  const tokens = c.steps * c.batchSize * c.blockLength;
  return `# ${kindsOf(r).map((k) => SHORT[k]).join(" vs ")} — ${c.preset} preset

Command: \`${r.command}\` (full configuration in \`config.json\`).
Backend: ${r.backend}. Training engine: ${r.engine}. Tokenizer: \`${r.tokenizer.id}\` (${r.tokenizer.vocabSize} ids). Data: ${d.source} —
${d.trainTokens} train tokens, ${d.testTokens} test tokens, ${
    fixed(d.bytesPerToken, 3)
  } bytes/token;
unigram entropy of the train split ${fixed(d.unigramEntropy, 3)} nats (${
    fixed(d.unigramEntropy / Math.LN2)
  } bits) per token.
Judge of generative perplexity: ${r.judge}.
Models: ${c.nLayer} layers, d_model ${c.dModel}, ${c.nHead} heads, context ${c.blockLength},
${
    r.results[0]?.parameters ?? "?"
  } parameters each; ${c.steps} steps × ${c.batchSize} blocks × ${c.blockLength} tokens
(${tokens} tokens) per model, matched. The run took ${
    fixed(r.seconds / 60, 1)
  } minutes.`;
}

/** Which unmasking models generated at how many steps, e.g. "; D3PM and MLM at 64 steps". */
function unmaskingSteps(r: ExperimentResult): string {
  const who = kindsOf(r).filter((k) => k !== "ar").map((k) => SHORT[k]);
  const steps = d3pmResults(r)[0]?.curve.at(-1)?.steps ??
    mlmResults(r)[0]?.genSteps;
  return who.length ? `; ${who.join(" and ")} at ${steps} steps` : "";
}

function likelihoodSection(r: ExperimentResult): string {
  const c = r.config;
  const genBatches = r.results[0]?.generation.speed.batches ?? 0;
  const generated = genBatches * c.genBatch * c.blockLength;
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
      "gen PPL (judge)",
      "entropy",
    ],
    r.results.map((m) => [
      NAME[m.model],
      m.seed,
      `${le(m)}${fixed(m.test.bpt)}`,
      `${le(m)}${fixed(m.test.nll)}${
        m.test.stderr !== undefined ? ` ± ${fixed(m.test.stderr, 3)}` : ""
      }`,
      `${le(m)}${fixed(m.test.ppl, 1)}`,
      `${le(m)}${fixed(m.test.bpb, 3)}`,
      fixed(m.generation.speed.batchesPerSecond, 3),
      fixed(m.generation.speed.tokensPerSecond, 0),
      fixed(m.generation.genPpl, 1),
      fixed(m.generation.entropy, 2),
    ]),
  );
  return `## Likelihood and speed (per seed)

D3PM figures are upper bounds (Monte-Carlo continuous-time ELBO with its standard error, ${c.elboSamples}
draw(s) per test block by mask count, the same draws for every seed); AR figures are exact. BPT = NLL / ln 2, PPL = e^NLL. AR scores tokens 2..L of each
test block, D3PM all L.${
    mlmResults(r).length
      ? " The MLM's figures are the same bound (the same draws) with the MLM as the denoiser: valid, but loose — it was trained at one masking rate, the bound asks about all of them. It generates by confidence unmasking."
      : ""
  } Speed: generating ${genBatches} batches of ${c.genBatch} × ${c.blockLength} tokens
(${generated} tokens${
    generated < 100000
      ? "; the thesis generates 100K — this preset generates fewer to fit its time"
      : ""
  })${unmaskingSteps(r)}.

${perSeed}`;
}

function seedSection(r: ExperimentResult): string {
  const rows = kindsOf(r).map((kind) => {
    const ms = r.results.filter((m) => m.model === kind);
    const bpt = summarize(ms.map((m) => m.test.bpt));
    const speed = summarize(ms.map((m) => m.generation.speed.batchesPerSecond));
    const p = kind === "ar" ? "" : "≤ ";
    return [
      SHORT[kind],
      bpt.n,
      `${p}${fixed(bpt.mean)} ± ${fixed(bpt.sd)}`,
      `${p}${fixed(bpt.min)}`,
      `${fixed(bpt.min)}–${fixed(bpt.max)}`,
      fixed(speed.mean, 3),
    ];
  });
  const sd = (kind: ModelResult["model"]) =>
    summarize(
      r.results.filter((m) => m.model === kind).map((m) => m.test.bpt),
    ).sd;
  const both = kindsOf(r).includes("ar") && kindsOf(r).includes("d3pm");
  const stability = r.config.seeds > 1 && both
    ? `Stability: the sd of test BPT across ${r.config.seeds} seeds is ${
      fixed(sd("ar"), 3)
    } for the AR model and ${fixed(sd("d3pm"), 3)} for the D3PM (${
      fixed(sd("d3pm") / Math.max(sd("ar"), 1e-9), 1)
    }× the AR's); the thesis's D3PM ranged over 3.7 BPT.`
    : r.config.seeds > 1
    ? `Across ${r.config.seeds} seeds:`
    : "One seed: run with --seeds N for the stability of these figures.";
  return `## Across seeds

${stability}

${
    markdownTable([
      "Model",
      "Seeds",
      "BPT mean ± sd",
      "best",
      "range",
      "batches/s (mean)",
    ], rows)
  }

${THESIS}`;
}

function exactSection(r: ExperimentResult): string {
  const c = r.config;
  const rows = d3pmResults(r).flatMap((m) =>
    m.exact
      ? [[
        m.seed,
        `≤ ${fixed(m.test.nll, 3)} ± ${fixed(m.test.stderr, 3)}`,
        `≤ ${fixed(m.exact.nll, 3)}${
          m.exact.rows > 1 && Number.isFinite(m.exact.stderr)
            ? ` ± ${fixed(m.exact.stderr, 3)}`
            : " (one draw: no error bar)"
        } (${m.exact.tokens} tokens)`,
      ]]
      : []
  );
  return `## Exact discrete bound vs Monte-Carlo continuous bound (D3PM)

Exact: all T = ${c.diffusionSteps} terms plus the prior term, on the first ${c.exactBlocks} test block(s); each
block is one random draw of the masks at every step, so its error bar comes from the spread across blocks.

${
    rows.length
      ? markdownTable([
        "Seed",
        "continuous (all eval blocks)",
        "exact discrete",
      ], rows)
      : "(skipped: --exact-blocks 0)"
  }`;
}

function curveSection(r: ExperimentResult): string {
  const arRows = r.results.filter((m) => m.model === "ar").map((m) => [
    m.seed,
    "AR",
    "–",
    fixed(m.generation.speed.batchesPerSecond, 3),
    fixed(m.generation.speed.tokensPerSecond, 0),
    fixed(m.generation.genPpl, 1),
    fixed(m.generation.entropy, 2),
  ]);
  const d3Rows = d3pmResults(r).flatMap((m) =>
    m.curve.map((p) => [
      m.seed,
      p.steps,
      fixed(p.speed.forwardPassesPerBatch, 1),
      fixed(p.speed.batchesPerSecond, 3),
      fixed(p.speed.tokensPerSecond, 0),
      fixed(p.genPpl, 1),
      fixed(p.entropy, 2),
    ])
  );
  const mlmRows = mlmResults(r).map((m) => [
    m.seed,
    `MLM ${m.genSteps} (confidence)`,
    fixed(m.generation.speed.forwardPassesPerBatch, 1),
    fixed(m.generation.speed.batchesPerSecond, 3),
    fixed(m.generation.speed.tokensPerSecond, 0),
    fixed(m.generation.genPpl, 1),
    fixed(m.generation.entropy, 2),
  ]);
  return `## Speed vs quality

Generative perplexity of samples under the judge (lower is better; ${r.judge}) is shown with the samples'
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
    ], [...arRows, ...d3Rows, ...mlmRows])
  }

![speed vs quality](speed_quality.svg)`;
}

function infillAndTraining(
  r: ExperimentResult,
  losses: Map<string, number[]>,
): string {
  const window = plateauWindow(r.config.batchSize);
  const mlm = mlmResults(r).length > 0;
  const infill = markdownTable(
    [
      "Model",
      "Seed",
      "hidden (asked)",
      "hidden (actual)",
      "exact-match accuracy",
      "NLL of hidden tokens (nats)",
    ],
    [...d3pmResults(r), ...mlmResults(r)].map((m) => [
      SHORT[m.model],
      m.seed,
      `${fixed(100 * m.infill.fraction, 0)}%`,
      `${m.infill.hidden} (${fixed(100 * m.infill.hiddenFraction, 1)}%)`,
      fixed(m.infill.accuracy, 3),
      fixed(m.infill.nll, 3),
    ]),
  );
  const training = markdownTable(
    [
      "Model",
      "Seed",
      "seconds",
      "tokens/s",
      "final train loss",
      "valid (last)",
      "valid (best, step)",
      "leaves plateau at step",
      "evaluated",
    ],
    r.results.map((m) => {
      const v = m.training.valid;
      const exit = plateauExit(
        losses.get(`${m.model} ${m.seed}`) ?? [],
        r.data.unigramEntropy,
        window,
      );
      return [
        NAME[m.model],
        m.seed,
        fixed(m.training.seconds, 0),
        fixed(m.training.tokens / m.training.seconds, 0),
        fixed(m.training.lastLoss, 3),
        v ? `${vle(m)}${fixed(v.final, 3)}` : "–",
        v ? `${vle(m)}${fixed(v.best, 3)} (${v.bestStep})` : "–",
        exit ? String(exit) : "never",
        v?.kept === "best" ? "best validation" : "last step",
      ];
    }),
  );
  return `## Infilling (D3PM${mlm ? " and MLM" : ""})

The first ${
    Math.min(8, r.config.evalBlocks || 8)
  } test blocks, each token hidden with the asked probability, filled in by the ancestral sampler at
the largest step count; the NLL is one pass on the blanks.${
    mlm
      ? " The D3PM and the MLM are given the same blanks and the same random numbers: only the network differs."
      : ""
  }

${infill}

## Training

Seconds and tokens/s count every session of a resumed run.${
    r.config.tMin !== 0.001 || r.config.tMax !== 1
      ? ` The D3PM's training loss draws t from [${r.config.tMin}, ${r.config.tMax}] (a clipped mask rate): it is a training objective, not the bound — the validation curve and the test figures are the bound.`
      : ""
  } Validation: nats per token on the first
${r.config.validBlocks} blocks of the valid split every ${r.config.validEvery} steps (the D3PM's bound with one
fixed set of draws, the same at every validation${
    mlm
      ? "; the MLM's own loss, nats per masked token, with fixed masks — not comparable with the others"
      : ""
  }); "leaves plateau": the first step at which the mean training loss of the last ${window} steps
is 0.25 nat below the train split's unigram entropy (for the MLM: its masked loss); "evaluated" says which weights the test figures use
(\`--keep\`).

![loss curves](loss.svg)

${training}

Samples: \`samples.txt\`. Per-step metrics: \`metrics.jsonl\`.
`;
}

/**
 * AR, D3PM and MLM side by side, mean ± sd across seeds: the MLM's answer to
 * how a one-rate masked model compares with the diffusion model.
 */
function threeWaySection(r: ExperimentResult): string {
  const kinds = kindsOf(r);
  if (!kinds.includes("mlm")) return "";
  const ms = (k: ModelResult["model"]) =>
    r.results.filter((m) => m.model === k);
  const stat = (xs: number[], digits: number, prefix = "") => {
    if (xs.length === 0) return "–";
    const s = summarize(xs);
    return `${prefix}${fixed(s.mean, digits)}${
      s.n > 1 ? ` ± ${fixed(s.sd, digits)}` : ""
    }`;
  };
  const infillOf = (m: ModelResult) => m.model === "ar" ? undefined : m.infill;
  const rows = kinds.map((k) => {
    const list = ms(k);
    const fills = list.map(infillOf).filter((x) => x !== undefined);
    const mlm = list.filter((m): m is MlmResult => m.model === "mlm");
    return [
      SHORT[k],
      list.length,
      stat(fills.map((f) => f.accuracy), 3),
      stat(fills.map((f) => f.nll), 2),
      stat(list.map((m) => m.generation.genPpl), 0),
      stat(list.map((m) => m.generation.entropy), 2),
      stat(list.map((m) => m.test.nll), 2, k === "ar" ? "" : "≤ "),
      stat(mlm.map((m) => m.pll.nats), 2),
    ];
  });
  const steps = d3pmResults(r)[0]?.curve.at(-1)?.steps ??
    mlmResults(r)[0]?.genSteps;
  return `## AR, D3PM and MLM (mean ± sd across seeds)

Infilling: ${
    fixed(100 * r.config.infillFraction, 0)
  }% of the first test blocks hidden; the D3PM and the MLM fill the same blanks (the AR model does
not infill). Generation: gen PPL under the judge and per-sample entropy; AR left to right, D3PM ancestral and MLM
confidence unmasking, both at ${steps} steps. Likelihood (NLL, nats per token): exact for AR; for the D3PM and the
MLM the same continuous bound (the same draws), with the network as the denoiser — for the MLM valid but loose, as
it was trained at one masking rate (${
    fixed(100 * (mlmResults(r)[0]?.rate ?? 0.15), 0)
  }%) and the bound asks about every rate. PLL: minus the MLM's
pseudo-log-likelihood per token (each token masked alone) — **not a likelihood**, no bound on one, and not comparable
with the NLL column.

${
    markdownTable([
      "Model",
      "seeds",
      "infill exact-match",
      "infill NLL (nats)",
      "gen PPL (judge)",
      "entropy",
      "NLL (nats; ≤: bound)",
      "PLL (not a likelihood)",
    ], rows)
  }`;
}

/**
 * When a training curve leaves the unigram plateau: the first step at which
 * the mean training loss of the last `window` steps is `margin` nats below
 * the unigram entropy.
 *
 * @param losses Training loss of steps 1, 2, ….
 * @param entropy The train split's unigram entropy, nats.
 * @param window Steps averaged (the ablation and the report use 25 steps of
 *   8 rows: `200 / batchSize`).
 * @param margin Nats below the entropy (default 0.25).
 * @returns The step, or 0 if it never does.
 */
export function plateauExit(
  losses: readonly number[],
  entropy: number,
  window: number,
  margin = 0.25,
): number {
  let sum = 0;
  for (let i = 0; i < losses.length; i++) {
    sum += losses[i] - (i >= window ? losses[i - window] : 0);
    if (i + 1 >= window && sum / window < entropy - margin) return i + 1;
  }
  return 0;
}

/** Steps averaged by {@linkcode plateauExit}: 25 steps' worth of 8 rows. */
export function plateauWindow(batchSize: number): number {
  return Math.max(1, Math.round(200 / batchSize));
}

/** One record of `metrics.jsonl`. */
type MetricsRecord = Awaited<ReturnType<typeof MetricsLog.read>>[number];

/** Per model and seed (`"d3pm 0"`), the training losses by step. */
function trainingLosses(
  records: readonly MetricsRecord[],
): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const rec of records) {
    if (typeof rec.loss !== "number") continue;
    const key = `${rec.model} ${rec.seed}`;
    const losses = out.get(key) ?? [];
    losses.length = Math.min(losses.length, Number(rec.step) - 1); // resumed
    losses.push(rec.loss);
    out.set(key, losses);
  }
  return out;
}

/**
 * Training-loss and validation series per model and seed; a resumed run's
 * redone steps replace the earlier ones.
 */
function lossSeries(records: readonly MetricsRecord[]): Series[] {
  const series = new Map<string, [number, number][]>();
  for (const rec of records) {
    const valid = typeof rec.valid === "number";
    const key = `${String(rec.model).toUpperCase()} ${
      valid ? "valid" : "train"
    } seed ${rec.seed}`;
    const pts = series.get(key) ?? [];
    const step = Number(rec.step);
    while (pts.length > 0 && pts[pts.length - 1][0] >= step) pts.pop();
    pts.push([step, Number(valid ? rec.valid : rec.loss)]);
    series.set(key, pts);
  }
  const smooth = (pts: [number, number][]): [number, number][] => {
    const w = Math.max(1, Math.floor(pts.length / 50));
    return pts.map(([s], i) => {
      const win = pts.slice(Math.max(0, i - w + 1), i + 1);
      return [s, win.reduce((a, [, y]) => a + y, 0) / win.length];
    });
  };
  return [...series].map(([name, pts]) => ({
    name,
    points: name.includes(" train ") ? smooth(pts) : pts,
  }));
}

function speedQualitySeries(r: ExperimentResult): Series[] {
  const sq: Series[] = d3pmResults(r).map((m) => ({
    name: `D3PM seed ${m.seed}`,
    points: m.curve.map((p) =>
      [p.speed.tokensPerSecond, p.genPpl] as [number, number]
    ),
  }));
  for (const m of mlmResults(r)) {
    sq.push({
      name: `MLM seed ${m.seed}`,
      points: [[m.generation.speed.tokensPerSecond, m.generation.genPpl]],
    });
  }
  for (const m of r.results.filter((m) => m.model === "ar")) {
    sq.push({
      name: `AR seed ${m.seed}`,
      points: [[m.generation.speed.tokensPerSecond, m.generation.genPpl]],
    });
  }
  return sq;
}

/**
 * The first `count` rows of generated ids as text, for `samples.txt`.
 *
 * @param label Which model.
 * @param ids `rows × length` ids.
 * @param options Row length, how many, and the tokenizer's decode.
 * @returns The text.
 */
export function formatSamples(
  label: string,
  ids: Int32Array,
  options: {
    length: number;
    count: number;
    decode: (ids: Int32Array) => string;
  },
): string {
  const { length: L } = options;
  const out: string[] = [];
  for (let r = 0; r < Math.min(options.count, ids.length / L); r++) {
    out.push(
      `--- ${label} sample ${r + 1} ---\n${
        options.decode(ids.subarray(r * L, (r + 1) * L))
      }\n`,
    );
  }
  return out.join("\n");
}

/**
 * Write `report.md`, `loss.svg` and `speed_quality.svg` into the run folder.
 *
 * @param r The run's results.
 * @param folder The run folder (holding `metrics.jsonl`).
 */
export async function writeReport(
  r: ExperimentResult,
  folder: RunFolder,
): Promise<void> {
  const metrics = await MetricsLog.read(folder.metricsPath);
  const md = [
    header(r),
    likelihoodSection(r),
    seedSection(r),
    threeWaySection(r),
    exactSection(r),
    curveSection(r),
    infillAndTraining(r, trainingLosses(metrics)),
  ].filter((x) => x !== "").join("\n\n");
  await Deno.writeTextFile(`${folder.dir}/report.md`, md);
  await Deno.writeTextFile(
    `${folder.dir}/loss.svg`,
    lineChart(lossSeries(metrics), {
      title:
        "Training loss and validation (AR: NLL; D3PM: bound; MLM: masked loss), nats per token",
      xLabel: "step",
      yLabel: "loss (nats/token)",
    }),
  );
  await Deno.writeTextFile(
    `${folder.dir}/speed_quality.svg`,
    lineChart(speedQualitySeries(r), {
      title: "Generation speed vs sample quality",
      xLabel: "tokens/s generated (log)",
      yLabel: "gen PPL under the judge",
      logX: true,
      markers: true,
    }),
  );
}

/** How samples of a model are labelled in samples.txt. */
export function sampleLabel(m: ModelResult): string {
  switch (m.model) {
    case "ar":
      return "AR";
    case "d3pm":
      return `D3PM (${m.curve.at(-1)?.steps} steps)`;
    case "mlm":
      return `MLM (confidence unmasking, ${m.genSteps} steps)`;
  }
}
