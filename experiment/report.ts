/**
 * The run report: `report.md` with tables laid out like the thesis's, plus
 * `loss.svg` (training curves) and `speed_quality.svg`. Its rows come from
 * the results, labelled by the registry; each contestant adds its own
 * sentences and sections (see `ContestantReport`).
 *
 * @module
 */
import { writeFileAtomic } from "@d3pm/core";
import { chart, fixed, markdownTable, summarize } from "@d3pm/eval";
import { MetricsLog } from "@d3pm/train";
import type {
  Contestant,
  ContestantLabel,
  ReportContext,
  SpeedRow,
} from "./contestant.ts";
import { contestants, labelOf } from "./registry.ts";
import { formatFlops } from "./budget.ts";
import type { ExperimentResult, ModelResult, SpeedQuality } from "./results.ts";
import type { RunFolder } from "./run_folder.ts";
import { PlateauScan } from "./_plateau.ts";
import {
  type ChartLabels,
  curvesOf,
  lossChart,
  speedQualityChart,
} from "./charts.ts";

const THESIS =
  "Thesis (WikiText-103, 124M parameters, GPT-2 tokens): AR BPT 4.60; D3PM BPT mean 8.06, best 5.72, " +
  "range 5.72–9.41; generation 1.68 (AR) vs 3.97 (D3PM) batches/s at batch size 4.";

/** The registered contestant of `kind`, if it still is. */
function registered(kind: string): Contestant | undefined {
  return contestants().find((c) => c.kind === kind);
}

/** The contestants of a run, in training order, each once. */
function kindsOf(r: ExperimentResult): string[] {
  return [...new Set(r.results.map((m) => m.model))];
}

const label = (kind: string): ContestantLabel => labelOf(kind);
const le = (m: ModelResult) => (m.test.bound ? "≤ " : "");
/** Whether a contestant's validation figure is a bound (the D3PM's). */
const vle = (m: ModelResult) =>
  registered(m.model)?.validation.bound ? "≤ " : "";

/** How a result's generation was made, for sentences. */
function generationOf(m: ModelResult): string | undefined {
  return registered(m.model)?.report?.generation?.(m);
}

/** The speed rows of a result (default: one row, its label). */
function speedRows(m: ModelResult): SpeedRow[] {
  return registered(m.model)?.report?.speed?.(m) ??
    [{ setting: label(m.model).short, point: m.generation }];
}

/** The sentences every contestant of a run adds to one paragraph. */
function notes(
  r: ExperimentResult,
  pick: (c: Contestant) => string | undefined,
): string {
  return kindsOf(r).flatMap((k) => {
    const c = registered(k);
    const s = c ? pick(c) : undefined;
    return s ? [s] : [];
  }).join(" ");
}

function header(r: ExperimentResult): string {
  const c = r.config, d = r.data;
  const tokens = c.steps * c.batchSize * c.blockLength;
  return `# ${
    kindsOf(r).map((k) => label(k).short).join(" vs ")
  } — ${c.preset} preset

Command: \`${r.command}\` (full configuration in \`config.json\`).
Backend: ${r.backend}. Training engine: ${r.engine}.${
    ownEngines(r)
  } Tokenizer: \`${r.tokenizer.id}\` (${r.tokenizer.vocabSize} ids). Data: ${d.source} —
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
(${tokens} tokens) ${budgetSentence(r, tokens)} ${
    // results.json's seconds are this process's: after a --resume, only
    // the last session's (training's seconds below count every session).
    c.resume ? "This session (a --resume) took" : "The run took"} ${
    fixed(r.seconds / 60, 1)
  } minutes.${mixedEngines(r)}${evaluatedElsewhere(r)}`;
}

// The budget after "(N tokens)": "per model, matched." when no model
// started from another's weights; else each such model's source (its
// tokens and FLOPs) and its total, and "matched" only when every model's
// total is the same (a run's AR and its adapted D3PM are not).
function budgetSentence(r: ExperimentResult, tokens: number): string {
  const adapted = r.results.filter((m) => m.training.initFrom);
  if (adapted.length === 0) return "per model, matched.";
  const total = (m: ModelResult) => {
    const from = m.training.initFrom;
    return from ? tokens + (from.tokens ?? NaN) : tokens;
  };
  const parts = kindsOf(r).flatMap((k) => {
    const own = r.results.filter((m) => m.model === k && m.training.initFrom);
    if (own.length === 0) return [];
    const seeds = own.map((m) => m.training.initFrom!.seed);
    const sameSeeds = own.length > 1 &&
      own.every((m, i) => m.seed === seeds[i]);
    const each = own.map((m) => (note: string) => {
      const from = m.training.initFrom!;
      const what = `the ${label(from.model).short} of ${from.dir} (${note})`;
      if (from.tokens === undefined || from.flops === undefined) {
        return `${what}, an imported checkpoint: its training is not known, not counted`;
      }
      const mine = 6 * m.parameters * tokens;
      return `${what}, trained on ${from.tokens} tokens (${
        flopsText(from.flops)
      }): in all ${total(m)} tokens, ${flopsText(mine + from.flops)}`;
    });
    // A cost every seed shares is said once.
    const shared = new Set(each.map((f) => f(""))).size === 1 &&
      (sameSeeds || new Set(seeds).size === 1);
    const text = shared
      ? `from ${
        each[0](
          sameSeeds
            ? "each seed's own"
            : `seed ${[...new Set(seeds)].join(", ")}`,
        )
      }`
      : own.map((m, i) =>
        `at seed ${m.seed} from ${each[i](`seed ${seeds[i]}`)}`
      )
        .join("; ");
    return [`The ${label(k).short} started ${text}.`];
  });
  const totals = new Set(r.results.map(total));
  const matched = kindsOf(r).length > 1 && totals.size === 1 &&
    Number.isFinite([...totals][0]);
  return `per model of its own training (${
    flopsText(6 * (r.results[0]?.parameters ?? NaN) * tokens)
  }, 6 · parameters · tokens). ${parts.join(" ")} ${
    matched
      ? "Total compute matched."
      : [...totals].some((t) => !Number.isFinite(t))
      ? "Total compute not known: an imported source's training is not."
      : kindsOf(r).length > 1
      ? "Total compute not matched: the models' totals differ."
      : "One contestant: nothing to match here; compare its total with other runs'."
  }`;
}

/** FLOPs with an SI prefix, three significant digits: `4.05 TFLOP`. */
function flopsText(x: number): string {
  return formatFlops(x, { significant: 3 });
}

// The contestants that trained and evaluated on an engine of their own
// (one that runs on tfjs only, in a run on a fused engine), as a sentence,
// or "": their times are that engine's, not the run's. A model evaluated
// on another engine than trained it is said by evaluatedElsewhere instead.
function ownEngines(r: ExperimentResult): string {
  const own = new Map<string, string>();
  for (const m of r.results) {
    if (
      m.engine !== undefined && m.engine !== r.engine && !trainedElsewhere(m)
    ) {
      own.set(m.model, m.engine);
    }
  }
  return [...own].map(([k, e]) =>
    ` ${
      label(k).short
    } trained and evaluated on ${e}: its times are that engine's.`
  ).join("");
}

// The models whose training steps ran on more than one engine (a resume
// on another engine, thread count or BLAS), as a sentence, or "".
function mixedEngines(r: ExperimentResult): string {
  const mixed = r.results.flatMap((m) => {
    const spans = m.training.engines ?? [];
    if (spans.length < 2) return [];
    const parts = spans.map((s, i) =>
      `steps ${s.fromStep + 1}–${
        spans[i + 1]?.fromStep ?? r.config.steps
      } on ${s.engine}`
    );
    return [`seed ${m.seed} ${m.model}: ${parts.join(", ")}`];
  });
  return mixed.length === 0 ? "" : `
**Resumed on another engine** (its rounding differs, so these figures are not
bit-identical to an uninterrupted run's): ${mixed.join("; ")}.`;
}

// Whether the engine that evaluated `m` is not the one that ran its last
// training step: a model an older run finished, evaluated again on the
// engine of a resume (e.g. the AR of a run made when bd3 put every model on
// tfjs, resumed where only bd3 stays on tfjs).
function trainedElsewhere(m: ModelResult): boolean {
  const last = m.training.engines?.at(-1)?.engine;
  return m.evaluatedOn !== undefined && last !== undefined &&
    last !== m.evaluatedOn;
}

// The models evaluated on another engine than trained them, as a
// sentence, or "": their figures were measured there, not where they
// trained.
function evaluatedElsewhere(r: ExperimentResult): string {
  const models = r.results.filter(trainedElsewhere).map((m) =>
    `seed ${m.seed} ${label(m.model).short} trained on ${
      [...new Set(m.training.engines!.map((s) => s.engine))].join(", then ")
    }, evaluated on ${m.evaluatedOn}`
  );
  return models.length === 0 ? "" : `
**Evaluated on another engine than trained it** (its test, generation and
speed figures are the evaluating engine's): ${models.join("; ")}.`;
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
      label(m.model).title,
      m.seed,
      `${le(m)}${fixed(m.test.bpt)}`,
      `${le(m)}${fixed(m.test.nll)}${
        m.test.stderr !== undefined ? ` ± ${fixed(m.test.stderr, 3)}` : ""
      }`,
      `${le(m)}${fixed(m.test.ppl, 1)}`,
      `${le(m)}${fixed(m.test.bpb, 3)}`,
      fixed(m.generation.speed.batchesPerSecond, 3),
      fixed(m.generation.speed.tokensPerSecond, 0),
      genPplCell(m.generation),
      fixed(m.generation.entropy, 2),
    ]),
  );
  const how = kindsOf(r).flatMap((k) => {
    const m = r.results.find((x) => x.model === k)!;
    const g = generationOf(m);
    return g ? [g] : [];
  });
  return `## Likelihood and speed (per seed)

BPT = NLL / ln 2, PPL = e^NLL; ≤ marks an upper bound. ${
    notes(r, (k) => k.report?.likelihood?.(c))
  } Speed: generating ${genBatches} batches of ${c.genBatch} × ${c.blockLength} tokens
(${generated} tokens${
    generated < 100000
      ? "; the thesis generates 100K — this preset generates fewer to fit its time"
      : ""
  })${how.length ? `; ${how.join(", ")}` : ""}.

${perSeed}`;
}

function seedSection(r: ExperimentResult): string {
  const kinds = kindsOf(r);
  const of = (kind: string) => r.results.filter((m) => m.model === kind);
  const rows = kinds.map((kind) => {
    const ms = of(kind);
    const bpt = summarize(ms.map((m) => m.test.bpt));
    const speed = summarize(ms.map((m) => m.generation.speed.batchesPerSecond));
    const p = le(ms[0]);
    return [
      label(kind).short,
      bpt.n,
      `${p}${fixed(bpt.mean)} ± ${fixed(bpt.sd)}`,
      `${p}${fixed(bpt.min)}`,
      `${fixed(bpt.min)}–${fixed(bpt.max)}`,
      fixed(speed.mean, 3),
    ];
  });
  const sd = (kind: string) => summarize(of(kind).map((m) => m.test.bpt)).sd;
  const [first, ...rest] = kinds;
  const stability = r.config.seeds > 1 && rest.length > 0
    ? `Stability: the sd of test BPT across ${r.config.seeds} seeds is ${
      fixed(sd(first), 3)
    } for ${label(first).short}, ${
      rest.map((k) =>
        `${fixed(sd(k), 3)} for ${label(k).short} (${
          fixed(sd(k) / Math.max(sd(first), 1e-9), 1)
        }× ${label(first).short}'s)`
      ).join(", ")
    }; the thesis's D3PM ranged over 3.7 BPT.`
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

/**
 * A report cell: gen PPL, with its 95% interval when measured
 * (`--gen-samples`).
 *
 * @param g The generation figures.
 * @returns The cell's text.
 *
 * @example
 * ```ts
 * import { genPplCell } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(genPplCell({ genPpl: 219.3 }), "219.3");
 * ```
 */
export function genPplCell(
  g: Pick<SpeedQuality, "genPpl" | "genPplInterval">,
): string {
  const i = g.genPplInterval;
  return `${fixed(g.genPpl, 1)}${
    i ? ` (95%: ${fixed(i.low, 1)}–${fixed(i.high, 1)}, n = ${i.samples})` : ""
  }`;
}

function curveSection(r: ExperimentResult): string {
  const rows = r.results.flatMap((m) =>
    speedRows(m).map((row) => [
      m.seed,
      row.setting,
      row.passes === undefined ? "–" : fixed(row.passes, 1),
      fixed(row.point.speed.batchesPerSecond, 3),
      fixed(row.point.speed.tokensPerSecond, 0),
      genPplCell(row.point),
      fixed(row.point.entropy, 2),
    ])
  );
  return `## Speed vs quality

Generative perplexity of samples under the judge (lower is better; ${r.judge}) is shown with the samples'
mean per-sample token entropy (very low entropy means repetitive text that fools generative perplexity).
"Setting": the unmasking steps of a denoiser; an AR model generates left to right.

${
    markdownTable([
      "Seed",
      "setting",
      "forward passes",
      "batches/s",
      "tokens/s",
      "gen PPL",
      "entropy",
    ], rows)
  }

![speed vs quality](speed_quality.svg)`;
}

function infillSection(r: ExperimentResult): string {
  const filled = r.results.filter((m) => m.infill);
  if (filled.length === 0) return "";
  const who = [...new Set(filled.map((m) => label(m.model).short))];
  const table = markdownTable(
    [
      "Model",
      "Seed",
      "hidden (asked)",
      "hidden (actual)",
      "exact-match accuracy",
      "NLL of hidden tokens (nats)",
    ],
    filled.map((m) => [
      label(m.model).short,
      m.seed,
      `${fixed(100 * m.infill!.fraction, 0)}%`,
      `${m.infill!.hidden} (${fixed(100 * m.infill!.hiddenFraction, 1)}%)`,
      fixed(m.infill!.accuracy, 3),
      fixed(m.infill!.nll, 3),
    ]),
  );
  return `## Infilling (${who.join(" and ")})

The first ${
    // Older runs did not record the blocks: the rule they ran under.
    filled[0].infill!.blocks ??
      Math.min(
        8,
        r.config.evalBlocks || 8,
      )} test blocks, each token hidden with the asked probability, filled in by the ancestral sampler at
the largest step count; the NLL is one pass on the blanks.${
    who.length > 1
      ? ` ${
        who.join(" and ")
      } are given the same blanks and the same random numbers: only the network differs.`
      : ""
  }

${table}`;
}

function trainingSection(
  r: ExperimentResult,
  plateau: PlateauScan,
): string {
  const window = plateauWindow(r.config.batchSize);
  const training = markdownTable(
    [
      "Model",
      "Seed",
      "seconds",
      "tokens/s",
      "train loss (steps)",
      "valid (last)",
      "valid (best, step)",
      "leaves plateau at step",
      "evaluated",
    ],
    r.results.map((m) => {
      const v = m.training.valid;
      const exit = plateau.exit(`${m.model} ${m.seed}`);
      return [
        label(m.model).title,
        m.seed,
        fixed(m.training.seconds, 0),
        fixed(m.training.tokens / m.training.seconds, 0),
        finalLoss(m.training),
        v ? `${vle(m)}${fixed(v.final, 3)}` : "–",
        v ? `${vle(m)}${fixed(v.best, 3)} (${v.bestStep})` : "–",
        exit ? String(exit) : "never",
        v?.kept === "best" ? "best validation" : "last step",
      ];
    }),
  );
  return `## Training

Seconds and tokens/s count every session of a resumed run. Validation: nats per token on
${validated(r)} every ${r.config.validEvery} steps. ${
    notes(r, (c) => c.report?.training?.(r.config))
  } "Train loss": the mean training loss of the steps named beside it, those after the last
reading before the end (a multiple of the \`--log-every\` that trained it, or a checkpoint); "last
logged figure" where the training did not record its steps (an older version's: on tfjs, the last
step's loss). "Leaves plateau": the first step at which the mean training loss of the last ${window} steps
is 0.25 nat below the train split's unigram entropy; "evaluated" says which weights the test figures use
(\`--keep\`).

![loss curves](loss.svg)

${training}

Samples: \`samples.txt\`. Per-step metrics: \`metrics.jsonl\`.
`;
}

/**
 * A model's final train loss with the steps it averages, as its training
 * recorded them: a model finished in an earlier session keeps that
 * session's figure (under its `--log-every`; an older version on tfjs
 * recorded the last step's loss), so the run's options cannot say which
 * steps it covers. Without the record: "last logged figure", no steps.
 */
function finalLoss(t: ExperimentResult["results"][number]["training"]): string {
  const s = t.lastLossSteps;
  const which = !s
    ? "last logged figure"
    : s[0] === s[1]
    ? `step ${s[1]}`
    : `steps ${s[0]} to ${s[1]}`;
  return `${fixed(t.lastLoss, 3)} (${which})`;
}

/** The sections the contestants of a run add. */
function contestantSections(r: ExperimentResult): string[] {
  const others: ReportContext = {
    label,
    generation: (m) => generationOf(m) ?? label(m.model).short,
  };
  return kindsOf(r).flatMap((k) =>
    registered(k)?.report?.sections?.(r, others) ?? []
  );
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
 *
 * @example
 * ```ts
 * import { plateauExit } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(plateauExit([7, 7, 6.5, 6.3, 6.2], 6.74, 2), 4);
 * ```
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

/**
 * Steps averaged by {@linkcode plateauExit}: 25 steps' worth of 8 rows.
 *
 * @param batchSize Rows per step.
 * @returns The window.
 *
 * @example
 * ```ts
 * import { plateauWindow } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(plateauWindow(4), 50);
 * ```
 */
export function plateauWindow(batchSize: number): number {
  return Math.max(1, Math.round(200 / batchSize));
}

/** The labels charts use: the registry's short labels and validation names. */
const CHART_LABELS: ChartLabels = {
  label: (kind) => label(kind).short,
  validation: (kind) => registered(kind)?.validation.name ?? "validation",
};

/**
 * The first `count` rows of generated ids as text, for `samples.txt`.
 *
 * @param label Which model.
 * @param ids `rows × length` ids.
 * @param options Row length, how many, and the tokenizer's decode.
 * @returns The text.
 *
 * @example
 * ```ts
 * import { formatSamples } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const text = formatSamples("AR", Int32Array.of(1, 2, 3, 4), {
 *   length: 2, count: 1, decode: (x) => [...x].join(" "),
 * });
 * assertEquals(text, "--- AR sample 1 ---\n1 2\n");
 * ```
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
  // Streamed into the curves and losses the report draws, a record at a
  // time: not every record of a log that may be 1 GiB.
  const curves = curvesOf([]);
  const plateau = new PlateauScan(
    r.data.unigramEntropy,
    plateauWindow(r.config.batchSize),
  );
  for await (const rec of MetricsLog.records(folder.metricsPath)) {
    curvesOf([rec], curves);
    plateau.add(rec);
  }
  if (plateau.needsReplay) {
    // A resumed run: which losses survive is known only at the end.
    plateau.replay();
    for await (const rec of MetricsLog.records(folder.metricsPath)) {
      plateau.add(rec);
    }
  }
  const md = [
    header(r),
    likelihoodSection(r),
    seedSection(r),
    ...contestantSections(r),
    curveSection(r),
    infillSection(r),
    trainingSection(r, plateau),
  ].filter((x) => x !== "").join("\n\n");
  // Each file whole or not at all: a Ctrl-C mid-write leaves the last one.
  await writeFileAtomic(`${folder.dir}/report.md`, md);
  const loss = lossChart(curves, CHART_LABELS);
  await writeFileAtomic(
    `${folder.dir}/loss.svg`,
    chart(loss.series, loss.options),
  );
  const speed = speedQualityChart(r, CHART_LABELS);
  await writeFileAtomic(
    `${folder.dir}/speed_quality.svg`,
    chart(speed.series, speed.options),
  );
}

/**
 * How samples of a result are headed in `samples.txt`: its contestant's
 * `sampleLabel`, else its short label.
 *
 * @param m The result.
 * @returns The label.
 *
 * @example
 * ```ts
 * import { sampleLabel } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(sampleLabel({ model: "ar" } as never), "AR");
 * ```
 */
export function sampleLabel(m: ModelResult): string {
  return registered(m.model)?.sampleLabel?.(m) ?? label(m.model).short;
}

// The blocks each validation scored: fewer than --valid-blocks when the
// valid split is shorter (said so), --valid-blocks in runs made before the
// count was recorded.
function validated(r: ExperimentResult): string {
  const n = r.data.validBlocks ?? r.config.validBlocks;
  return n < r.config.validBlocks
    ? `all ${n} blocks of the valid split (--valid-blocks ${r.config.validBlocks} asks for more than it has)`
    : `the first ${n} blocks of the valid split`;
}
