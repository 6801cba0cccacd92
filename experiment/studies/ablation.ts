/**
 * The ablation of training at a small budget (`deno task ablate`): each
 * variant trains one model of the `tiny` preset on the same number of
 * tokens and reports its validation NLL (the D3PM's: its bound, with one
 * fixed set of draws) and the step at which its training loss leaves the
 * unigram plateau. Results: JSON lines, `ablation.jsonl` and `ablation.md`.
 *
 * @module
 */
import { initBackend } from "@d3pm/backend";
import { pathExists, writeFileAtomic } from "@d3pm/core";
import { fixed, markdownTable } from "@d3pm/eval";
import { MetricsLog } from "@d3pm/train";
import { resolveConfig } from "../config.ts";
import { AR } from "../contestants/ar.ts";
import { d3pmContestant } from "../contestants/d3pm.ts";
import { checkTrainBatch, prepareData, type RunData } from "../data.ts";
import { ConfigError, type ExperimentConfig } from "../options.ts";
import { plateauWindow } from "../report.ts";
import { PlateauScan } from "../_plateau.ts";
import { RunFolder } from "../run_folder.ts";
import { shellQuote } from "../_shell.ts";
import { readSweep, studySweep, type Sweep, sweepPaths } from "../sweep.ts";
import { readStudyJson, readStudyText } from "./_results.ts";
import { enter, trainContestant } from "../train.ts";

/** One variant: a model and the options that differ from the baseline. */
export interface Variant {
  /** Short name. */
  name: string;
  /** Which model. */
  model: "ar" | "d3pm";
  /** Experiment options over the baseline (tokens matched through `steps`). */
  overrides: Partial<ExperimentConfig>;
}

/**
 * The baseline every variant moves from: the `tiny` preset as it was before
 * the ablation chose its defaults (one lr for both models, the full mask-rate
 * range, EMA 0.98, 30 warm-up steps). Pinned here so that the table stays
 * reproducible when the preset changes.
 *
 * @example Every variant starts from it, whatever the preset says now
 * ```ts
 * import { ABLATION_BASELINE, ablationBase } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const base = ablationBase(250);
 * assertEquals([base.lr, base.emaDecay, base.warmup], [2e-3, 0.98, 30]);
 * for (const [key, value] of Object.entries(ABLATION_BASELINE)) {
 *   assertEquals(base[key as keyof typeof base], value, key);
 * }
 * ```
 */
export const ABLATION_BASELINE: Readonly<Partial<ExperimentConfig>> = {
  lr: 2e-3,
  arLr: 0,
  tMin: 0.001,
  tMax: 1,
  timesPer: "row",
  timeConditioning: false,
  alibi: 0,
  alibiMode: "symmetric",
  emaDecay: 0.98,
  warmup: 30,
  batchSize: 8,
  weightDecay: 0.1,
  // The tiny preset's β2 moved to 0.999 on 2026-12-07; the ablation ran at 0.95.
  adamBeta2: 0.95,
};

/** A variant of `model` with `overrides`. */
function v(
  name: string,
  model: "ar" | "d3pm",
  overrides: Partial<ExperimentConfig> = {},
): Variant {
  return { name, model, overrides };
}

/**
 * The grid: each knob of the science issue, one at a time, at matched
 * tokens; then the winners together; then a second round of knobs on top of
 * the winners, and a third on top of the second's.
 *
 * @param steps Steps of the baseline (batch 8); each variant matches its tokens.
 * @returns The variants, in table order.
 *
 * @example
 * ```ts
 * import { grid } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const variants = grid(250);
 * assertEquals(variants[0], { name: "ar lr 0.001", model: "ar", overrides: { lr: 0.001 } });
 * assertEquals(new Set(variants.map((v) => v.name)).size, variants.length);
 * ```
 */
export function grid(steps: number): Variant[] {
  return [...firstRound(steps), ...secondRound(steps), ...thirdRound(steps)];
}

/** Each knob alone from the baseline, then the winners together. */
function firstRound(steps: number): Variant[] {
  const lrs = [1e-3, 2e-3, 4e-3, 8e-3];
  return [
    ...lrs.map((lr) => v(`ar lr ${lr}`, "ar", { lr })),
    ...lrs.map((lr) => v(`d3pm lr ${lr}`, "d3pm", { lr })),
    v("d3pm batch 32 (¼ steps)", "d3pm", {
      batchSize: 32,
      steps: Math.round(steps / 4),
      warmup: Math.round(30 / 4),
    }),
    v("d3pm t ∈ [0.3, 0.8]", "d3pm", { tMin: 0.3, tMax: 0.8 }),
    v("d3pm t ∈ [0.45, 0.95]", "d3pm", { tMin: 0.45, tMax: 0.95 }),
    v("d3pm times per token", "d3pm", { timesPer: "token" }),
    v("d3pm time-conditioned", "d3pm", { timeConditioning: true }),
    v("d3pm no EMA", "d3pm", { emaDecay: 0 }),
    v("d3pm EMA 0.99", "d3pm", { emaDecay: 0.99 }),
    v("d3pm no warm-up", "d3pm", { warmup: 0 }),
    v("d3pm warm-up 100", "d3pm", { warmup: 100 }),
    // The winners together, and the AR without EMA (EMA is shared).
    v("ar lr 0.004 + no EMA", "ar", { lr: 4e-3, emaDecay: 0 }),
    v("d3pm t ∈ [0.3, 0.8] + no EMA", "d3pm", {
      tMin: 0.3,
      tMax: 0.8,
      emaDecay: 0,
    }),
    v("d3pm t ∈ [0.3, 0.8] + no EMA + lr 0.001", "d3pm", {
      tMin: 0.3,
      tMax: 0.8,
      emaDecay: 0,
      lr: 1e-3,
    }),
  ];
}

/** From the first round's winners (t ∈ [0.3, 0.8], no EMA). */
function secondRound(steps: number): Variant[] {
  return [
    // More and smaller steps at matched tokens, a longer warm-up, lower mask
    // rates, no weight decay; and the AR model with its winners and smaller
    // steps.
    ...[
      ["batch 4 (2× steps)", {
        batchSize: 4,
        steps: steps * 2,
        warmup: 60,
      }],
      ["batch 2 (4× steps)", {
        batchSize: 2,
        steps: steps * 4,
        warmup: 120,
      }],
      ["warm-up 100", { warmup: 100 }],
      ["lr 0.003 + warm-up 100", { lr: 3e-3, warmup: 100 }],
      ["t ∈ [0.2, 0.6]", { tMin: 0.2, tMax: 0.6 }],
      ["t ∈ [0.1, 0.5]", { tMin: 0.1, tMax: 0.5 }],
      ["weight decay 0", { weightDecay: 0 }],
      ["batch 4 + lr 0.003 + warm-up 200", {
        batchSize: 4,
        steps: steps * 2,
        warmup: 200,
        lr: 3e-3,
      }],
      ["batch 4 + lr 0.0014", {
        batchSize: 4,
        steps: steps * 2,
        warmup: 60,
        lr: 1.4e-3,
      }],
      ...[0.25, 1, 4].map((alibi) =>
        [`batch 4 + lr 0.0014 + ALiBi ${alibi}`, {
          batchSize: 4,
          steps: steps * 2,
          warmup: 60,
          lr: 1.4e-3,
          alibi,
        }] as const
      ),
      ["batch 4 + lr 0.0014 + counts", {
        batchSize: 4,
        steps: steps * 2,
        warmup: 60,
        lr: 1.4e-3,
        timesPer: "count",
      }],
      ["batch 4 + lr 0.0014 + counts, t ∈ [0.001, 1]", {
        batchSize: 4,
        steps: steps * 2,
        warmup: 60,
        lr: 1.4e-3,
        timesPer: "count",
        tMin: 0.001,
        tMax: 1,
      }],
    ].map(([name, o]) =>
      v(`d3pm tuned + ${name}`, "d3pm", {
        tMin: 0.3,
        tMax: 0.8,
        emaDecay: 0,
        ...(o as Partial<ExperimentConfig>),
      })
    ),
    ...secondRoundAr(steps),
  ];
}

/** The AR model with its first-round winners and smaller steps. */
function secondRoundAr(steps: number): Variant[] {
  return [
    ...[4, 2].map((b) =>
      v(`ar tuned + batch ${b} (${8 / b}× steps)`, "ar", {
        lr: 4e-3,
        emaDecay: 0,
        batchSize: b,
        steps: steps * 8 / b,
        warmup: 30 * 8 / b,
      })
    ),
    v("ar tuned + batch 4 + lr 0.0028", "ar", {
      lr: 2.8e-3,
      emaDecay: 0,
      batchSize: 4,
      steps: steps * 2,
      warmup: 60,
    }),
  ];
}

/** From the tiny preset as the first two rounds chose it. */
function thirdRound(steps: number): Variant[] {
  return [
    // The model's shape (wider, deeper, more heads), the optimiser's
    // remaining knobs, and ALiBi heads centred on the neighbours.
    ...([
      ["width 256", { dModel: 256, dMlp: 1024 }],
      ["6 layers", { nLayer: 6 }],
      ["8 heads", { nHead: 8 }],
      ["lr 0.0028", { lr: 2.8e-3 }],
      ["clip 4", { clipNorm: 4 }],
      ["weight decay 0", { weightDecay: 0 }],
      ["t ∈ [0.2, 0.8]", { tMin: 0.2 }],
      // ALiBi heads 0 and 1 centred on the left and right neighbour.
      ["neighbour heads", { alibiMode: "neighbours" }],
      ...[4, 16].map((alibi) =>
        [`neighbour heads, ALiBi ${alibi}`, {
          alibiMode: "neighbours",
          alibi,
        }] as const
      ),
      ["neighbour heads, ALiBi 16, lr 0.0028", {
        alibiMode: "neighbours",
        alibi: 16,
        lr: 2.8e-3,
      }],
      ["neighbour heads, ALiBi 16, 8 heads", {
        alibiMode: "neighbours",
        alibi: 16,
        nHead: 8,
      }],
    ] as const).map(([name, o]) =>
      v(`d3pm round 2 + ${name}`, "d3pm", { ...round2D3pm(steps), ...o })
    ),
    v("ar round 2 + width 256", "ar", {
      ...round2Ar(steps),
      dModel: 256,
      dMlp: 1024,
    }),
  ];
}

/** The D3PM's settings as the second round chose them (the third's baseline). */
function round2D3pm(steps: number): Partial<ExperimentConfig> {
  return {
    tMin: 0.3,
    tMax: 0.8,
    emaDecay: 0,
    batchSize: 4,
    steps: steps * 2,
    warmup: 60,
    lr: 1.4e-3,
    alibi: 1,
  };
}

/** The AR model's settings as the second round chose them. */
function round2Ar(steps: number): Partial<ExperimentConfig> {
  return {
    lr: 4e-3,
    emaDecay: 0,
    batchSize: 4,
    steps: steps * 2,
    warmup: 60,
  };
}

/** What one variant measured. */
export interface AblationRow {
  /** The variant. */
  name: string;
  /** Which model. */
  model: "ar" | "d3pm";
  /** Validation nats per token at the end (the D3PM's: a bound). */
  valid: number;
  /** Bits per token of the same. */
  validBpt: number;
  /**
   * First step (of 8 rows) whose training loss, averaged over 25 steps' worth
   * of tokens, is 0.25 nat below the unigram entropy (0: never).
   */
  plateauExit: number;
  /** Training seconds. */
  seconds: number;
}

/** A variant's `results.json`: its row, the budget and the data's unigram entropy. */
export interface VariantResult extends AblationRow {
  /** Steps of the baseline. */
  steps: number;
  /** The train split's unigram entropy, nats. */
  unigramEntropy: number;
}

/**
 * A variant's run folder under the ablation's folder.
 *
 * @param out The ablation's folder.
 * @param name The variant's name.
 * @returns `out/<name, folder-safe>`.
 *
 * @example
 * ```ts
 * import { variantFolder } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * assertEquals(variantFolder("runs/ablate", "d3pm t ∈ [0.3, 0.8]"), "runs/ablate/d3pm-t-0.3-0.8-");
 * ```
 */
export function variantFolder(out: string, name: string): string {
  return `${out}/${name.replace(/[^a-z0-9.]+/gi, "-")}`;
}

/** The D3PM, validated with time draws as the ablation's first rows were. */
const D3PM_TIME_DRAWS = d3pmContestant({ validDraws: "time" });

/**
 * Train one variant from `base` into its own run folder under `out` and
 * measure it.
 *
 * @param variant The variant.
 * @param base The baseline configuration.
 * @param data The data (shared by every variant).
 * @param out The ablation's folder.
 * @returns Its row.
 */
export async function runVariant(
  variant: Variant,
  base: ExperimentConfig,
  data: RunData,
  out: string,
): Promise<AblationRow> {
  const config = resolveConfig({
    ...base,
    ...variant.overrides,
    out: variantFolder(out, variant.name),
    force: true,
  });
  // Before its folder is made, as the experiment checks its run (a variant
  // of batch 32 needs 32 blocks): not the batcher's "Cannot batch".
  checkTrainBatch(config, data);
  const folder = new RunFolder(config.out);
  await folder.check(config);
  // Whole on its own, like an experiment's run folder: its data record and BPE.
  const release = await folder.start(config, data.record);
  try {
    await data.persist(folder);
  } catch (e) {
    release();
    throw e;
  }
  const entrant = variant.model === "ar"
    ? enter(AR, { config, data })
    // Time draws for validation, as when the first rows were measured, so
    // that every row is scored by the same fixed draws.
    : enter(D3PM_TIME_DRAWS, { config, data });
  try {
    const { model, training } = await trainContestant(entrant, 0, {
      config,
      data,
      folder,
      metrics: new MetricsLog(folder.metricsPath),
      progress: true,
    });
    model.dispose();
    const row: AblationRow = {
      name: variant.name,
      model: variant.model,
      valid: training.valid!.final,
      validBpt: training.valid!.final / Math.LN2,
      plateauExit: await exitStep(
        folder.metricsPath,
        data.facts.unigramEntropy,
        config,
      ),
      seconds: training.seconds,
    };
    // The variant's folder holds its row: a finished cell when the grid
    // runs as a sweep, gathered by collectAblation().
    const result: VariantResult = {
      ...row,
      steps: base.steps,
      unigramEntropy: data.facts.unigramEntropy,
    };
    // Whole or not at all: its presence marks the cell finished.
    await writeFileAtomic(
      folder.resultsPath,
      JSON.stringify(result, null, 2) + "\n",
    );
    return row;
  } finally {
    release();
  }
}

/**
 * The plateau exit of the variant's one curve in steps of 8 rows (matched
 * tokens), 0 if never: as report.md finds it, in steps (whatever the log's
 * interval) and through a resume, a window of losses held, not the log.
 */
async function exitStep(
  log: string,
  entropy: number,
  c: ExperimentConfig,
): Promise<number> {
  const scan = new PlateauScan(entropy, plateauWindow(c.batchSize));
  let key: string | undefined;
  for (let pass = 0; pass < 2; pass++) {
    for await (const r of MetricsLog.records(log)) {
      if (typeof r.loss === "number") key ??= `${r.model} ${r.seed}`;
      scan.add(r);
    }
    if (!scan.needsReplay) break;
    scan.replay();
  }
  const exit = key === undefined ? 0 : scan.exit(key);
  return Math.round(exit * c.batchSize / 8);
}

/**
 * Refuse, before any variant trains, a train split shorter than one batch of
 * any of `variants` (each resolved over `base`), in the experiment's one line
 * (that of `checkTrainBatch`, naming the first variant's batch that does not
 * fit).
 *
 * @param variants The variants to run.
 * @param base The baseline configuration.
 * @param data The data (its train split's block count and file).
 *
 * @example A train split of 12 blocks takes batch 8 but not batch 32
 * ```ts
 * import { ConfigError } from "@d3pm/experiment";
 * import { ablationBase, checkVariantBatches, grid } from "@d3pm/experiment/studies";
 * import { assertThrows } from "@std/assert";
 * const data = { train: { count: 12 }, files: { train: "train.txt" } };
 * const variants = grid(250);
 * checkVariantBatches(variants.slice(0, 8), ablationBase(250), data);
 * assertThrows(
 *   () => checkVariantBatches(variants, ablationBase(250), data),
 *   ConfigError,
 *   "fewer than one batch of --batch-size 32",
 * );
 * ```
 */
export function checkVariantBatches(
  variants: readonly Variant[],
  base: ExperimentConfig,
  data: {
    readonly train: { readonly count: number };
    readonly files: { readonly train: string };
  },
): void {
  for (const v of variants) {
    checkTrainBatch(resolveConfig({ ...base, ...v.overrides }), data);
  }
}

/** Options of {@linkcode runAblation}. */
export interface AblationOptions {
  /** Steps of the baseline (batch 8). */
  steps: number;
  /** Where the runs and the table go. */
  out: string;
  /** Run only the variants whose name contains one of these. */
  only?: readonly string[];
  /** Where each row goes as a JSON line (default stdout). */
  emit?: (line: string) => void;
}

/**
 * The ablation's baseline configuration at `steps`.
 *
 * @param steps Steps of the baseline.
 * @returns The configuration every variant moves from.
 *
 * @example
 * ```ts
 * import { ABLATION_BASELINE, ablationBase } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const base = ablationBase(250);
 * assertEquals([base.steps, base.validEvery, base.lr], [250, 250, ABLATION_BASELINE.lr]);
 * ```
 */
export function ablationBase(steps: number): ExperimentConfig {
  return resolveConfig({
    preset: "tiny",
    ...ABLATION_BASELINE,
    steps,
    validEvery: steps,
    validBlocks: 64,
    judge: "self",
  });
}

/**
 * Run the variants of the grid (those of `only`), each into its own folder
 * under `out`, and write `ablation.jsonl` and `ablation.md` there. Rows of
 * earlier runs are kept (other budgets' in the jsonl; the table shows this
 * budget and says so); a variant run again replaces its row at this budget;
 * a line that is not a row is refused before anything runs. The table
 * follows the grid's order.
 *
 * @param options Steps, folder, which variants.
 *
 * @example A name in `only` that matches no variant is refused before any run
 * ```ts
 * import { ConfigError } from "@d3pm/experiment";
 * import { runAblation } from "@d3pm/experiment/studies";
 * import { assertRejects } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * await assertRejects(
 *   () => runAblation({ steps: 250, out, only: ["no such variant"] }),
 *   ConfigError,
 *   "Option --only no such variant matches no variant; the variants are ar lr 0.001",
 * );
 * await Deno.remove(out); // still empty
 * ```
 */
export async function runAblation(options: AblationOptions): Promise<void> {
  const { steps, out, only } = options;
  const emit = options.emit ?? console.log;
  const variants = chosen(steps, only);
  const base = ablationBase(steps);
  // Before any work: a line of ablation.jsonl that is not a row is refused.
  const file = `${out}/ablation.jsonl`;
  const kept = await keptRows(file);
  await initBackend({ prefer: base.backend });
  const data = await prepareData(base, new RunFolder(out), console.error);
  await Deno.mkdir(out, { recursive: true });
  // Every variant's batch before the first trains: a train split of 8–31
  // blocks would otherwise fail at the batch-32 variant, after eight runs.
  checkVariantBatches(variants, base, data);
  for (const v of variants) {
    const row = await runVariant(v, base, data, out);
    emit(JSON.stringify(row));
    keep(kept, row, steps);
    await writeRows(file, kept);
  }
  await writeTable(out, steps, kept, data.facts.unigramEntropy);
}

/** A line of `ablation.jsonl`: a variant's row at its budget. */
type BudgetRow = AblationRow & { steps: number };

/** Put `row` (at `steps`) into `kept`, replacing that variant's row at that budget. */
function keep(
  kept: Map<string, BudgetRow>,
  row: AblationRow,
  steps: number,
): void {
  kept.set(JSON.stringify([steps, row.name]), { ...row, steps });
}

/** `ablation.jsonl`: every kept row, of every budget, one per line. */
async function writeRows(
  file: string,
  kept: ReadonlyMap<string, BudgetRow>,
): Promise<void> {
  await writeFileAtomic(
    file,
    [...kept.values()].map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
}

/**
 * `ablation.md` from the kept rows at `steps`, in the grid's order; it
 * says which other budgets' rows `ablation.jsonl` holds, and which planned
 * variants it lacks (`missing`).
 */
async function writeTable(
  out: string,
  steps: number,
  kept: ReadonlyMap<string, BudgetRow>,
  entropy: number,
  missing: readonly string[] = [],
): Promise<void> {
  const here = new Map(
    [...kept.values()].filter((r) => r.steps === steps).map((r) => {
      const { steps: _, ...row } = r;
      return [r.name, row];
    }),
  );
  const rows = grid(steps).flatMap((v) =>
    here.has(v.name) ? [here.get(v.name)!] : []
  );
  const others = new Map<number, number>();
  for (const r of kept.values()) {
    if (r.steps !== steps) others.set(r.steps, (others.get(r.steps) ?? 0) + 1);
  }
  const notes = [
    ...missing.length
      ? [`Not in this table: ${missing.join(", ")} (planned, not finished).`]
      : [],
    ...others.size
      ? [
        `This table shows the rows at ${steps} steps; ablation.jsonl also holds ${
          [...others].map(([s, n]) => `${n} row(s) at ${s} steps`).join(", ")
        }.`,
      ]
      : [],
  ];
  await writeFileAtomic(
    `${out}/ablation.md`,
    ablationMarkdown(rows, steps, entropy) +
      notes.map((n) => `\n${n}\n`).join(""),
  );
  console.error(`ablation: ${out}/ablation.md`);
}

/**
 * Refuse, before anything is planned or trained, a `--steps` at which one
 * of `variants` cannot run (the baseline validates on a logged step, so
 * --steps is a multiple of --log-every; a warm-up of 100 or 200 steps
 * needs as many steps), naming the variant and the --steps it takes.
 *
 * @param variants The variants to run.
 * @param steps Steps of the baseline.
 * @throws {ConfigError} Naming the first variant that cannot run.
 *
 * @example The full grid needs 100 steps; without its long warm-ups, 30 do
 * ```ts
 * import { ConfigError } from "@d3pm/experiment";
 * import { checkVariantSteps, grid } from "@d3pm/experiment/studies";
 * import { assertThrows } from "@std/assert";
 * checkVariantSteps(grid(100), 100);
 * checkVariantSteps(grid(30).filter((v) => !/warm-up [12]00/.test(v.name)), 30);
 * assertThrows(
 *   () => checkVariantSteps(grid(30), 30),
 *   ConfigError,
 *   'Variant "d3pm warm-up 100" cannot run at --steps 30: it warms up for 100 of its 30 steps; it needs --steps 100, 110, 120, …',
 * );
 * assertThrows(() => checkVariantSteps(grid(25), 25), ConfigError, "--steps takes a multiple of 10");
 * ```
 */
export function checkVariantSteps(
  variants: readonly Variant[],
  steps: number,
): void {
  const every = resolveConfig({ preset: "tiny", ...ABLATION_BASELINE })
    .logEvery;
  if (steps % every !== 0) {
    throw new ConfigError(
      `Option --steps ${steps} cannot be the ablation's budget: the baseline validates at its last step, which must be a logged one; --steps takes a multiple of ${every} (30, 40, …; 100 or more for the whole grid)`,
    );
  }
  // The variant at another budget: its overrides scale with the steps.
  const runs = (v: Variant, at: number) => {
    const there = grid(at).find((g) => g.name === v.name) ?? v;
    try {
      resolveConfig({ ...ablationBase(at), ...there.overrides });
      return undefined;
    } catch (e) {
      if (e instanceof ConfigError) return e;
      throw e;
    }
  };
  for (const v of variants) {
    const e = runs(v, steps);
    if (e === undefined) continue;
    const c = { ...ablationBase(steps), ...v.overrides };
    const why = c.warmup > c.steps
      ? `it warms up for ${c.warmup} of its ${c.steps} steps`
      : `its configuration is refused (${e.message})`;
    let least = steps + every;
    while (least < 1e4 && runs(v, least) !== undefined) least += every;
    throw new ConfigError(
      `Variant ${
        JSON.stringify(v.name)
      } cannot run at --steps ${steps}: ${why}; it needs --steps ${least}, ${
        least + every
      }, ${least + 2 * every}, … (or choose other variants with --only)`,
    );
  }
}

/** The variants of `only` (every one without it), in the grid's order. */
function chosen(steps: number, only?: readonly string[]): Variant[] {
  const all = grid(steps);
  // No term would choose no variant (a run of nothing, an empty table); an
  // empty one every variant.
  if (only && (only.length === 0 || only.some((o) => o.trim() === ""))) {
    throw new ConfigError(
      `Option --only needs variant names, none empty, got ${
        JSON.stringify(only)
      }`,
    );
  }
  // A term that matches nothing (a typo) would silently leave its variants out.
  const none = only?.find((o) => !all.some((v) => v.name.includes(o)));
  if (none !== undefined) {
    throw new ConfigError(
      `Option --only ${none} matches no variant; the variants are ${
        all.map((v) => v.name).join(", ")
      }`,
    );
  }
  const variants = all.filter((v) =>
    !only || only.some((o) => v.name.includes(o))
  );
  checkVariantSteps(variants, steps);
  return variants;
}

/** Options of {@linkcode ablationSweep}. */
export interface AblationSweepOptions {
  /** Steps of the baseline (batch 8). */
  steps: number;
  /** The ablation's folder, also the sweep's. */
  out: string;
  /** Only the variants whose name contains one of these. */
  only?: readonly string[];
}

/**
 * The ablation's grid as sweep cells: one cell per variant, each
 * `deno run -A examples/ablate.ts --steps S --out OUT --variant NAME` into
 * the variant's folder (the same folder and row as the serial run), then
 * `--collect` writes `ablation.jsonl` and `ablation.md`. Save it with
 * `saveSweep` and run it with `deno task sweep run OUT --on local|slurm`.
 *
 * @param options Steps, folder, which variants.
 * @returns The sweep.
 *
 * @example
 * ```ts
 * import { ablationSweep, grid } from "@d3pm/experiment/studies";
 * import { assertEquals } from "@std/assert";
 * const s = ablationSweep({ steps: 250, out: "runs/ablate" });
 * assertEquals(s.cells.length, grid(250).length);
 * assertEquals(s.cells[0].args, [
 *   "--steps", "250", "--out", "runs/ablate", "--variant", "ar lr 0.001",
 * ]);
 * assertEquals(s.collect, ["--steps", "250", "--out", "runs/ablate", "--collect"]);
 * ```
 */
export function ablationSweep(options: AblationSweepOptions): Sweep {
  const { steps, only } = options;
  const out = options.out.replace(/\/+$/, "");
  const common = ["--steps", String(steps), "--out", out];
  return studySweep(
    out,
    "examples/ablate.ts",
    chosen(steps, only).map((v) => {
      const folder = variantFolder(out, v.name);
      return {
        name: folder.slice(out.length + 1),
        values: { variant: v.name, model: v.model },
        out: folder,
        args: [...common, "--variant", v.name],
      };
    }),
    [...common, "--collect"],
  );
}

/** Options of {@linkcode runAblationCell}. */
export interface AblationCellOptions {
  /** Steps of the baseline (batch 8). */
  steps: number;
  /** The ablation's folder. */
  out: string;
  /** The variant's exact name. */
  variant: string;
  /** Where its row goes as a JSON line (default stdout). */
  emit?: (line: string) => void;
}

/**
 * Run one variant of the grid (one cell of {@linkcode ablationSweep}) into
 * its folder; its row lands in the folder's `results.json`, not in the
 * ablation's table (see {@linkcode collectAblation}).
 *
 * @param options Steps, folder, the variant.
 * @throws {ConfigError} When no variant has that name.
 *
 * @example A name that is not the grid's is refused before any run
 * ```ts
 * import { ConfigError } from "@d3pm/experiment";
 * import { grid, runAblationCell } from "@d3pm/experiment/studies";
 * import { assertRejects } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * const name = grid(250)[0].name; // "ar lr 0.001"
 * await assertRejects(
 *   () => runAblationCell({ steps: 250, out, variant: name.toUpperCase() }),
 *   ConfigError,
 *   'Unknown variant "AR LR 0.001": --variant takes a name of the grid',
 * );
 * await Deno.remove(out);
 * ```
 */
export async function runAblationCell(
  options: AblationCellOptions,
): Promise<void> {
  const { steps, out } = options;
  const variant = grid(steps).find((v) => v.name === options.variant);
  if (!variant) {
    throw new ConfigError(
      `Unknown variant ${
        JSON.stringify(options.variant)
      }: --variant takes a name of the grid (deno task ablate --sweep lists them)`,
    );
  }
  checkVariantSteps([variant], steps);
  const base = ablationBase(steps);
  await initBackend({ prefer: base.backend });
  const data = await prepareData(base, new RunFolder(out), console.error);
  const row = await runVariant(variant, base, data, out);
  (options.emit ?? console.log)(JSON.stringify(row));
}

/**
 * Gather the variants' rows from their folders (`results.json` at the same
 * budget) into `ablation.jsonl` and `ablation.md`, keeping the rows of
 * earlier runs that have no folder row (other budgets' too, in the jsonl);
 * the table follows the grid's order, as {@linkcode runAblation} writes it.
 *
 * @param options Steps and folder; `partial`: make the table even when
 *   variants that `out/sweep.json` plans have no results (the table names
 *   them).
 * @returns How many variants had a row in their folder.
 * @throws {ConfigError} When no variant has one; when a planned variant has
 *   none (without `partial`), naming it; when `sweep.json` plans another
 *   budget; when a line of `ablation.jsonl` is not a row.
 *
 * @example One finished variant's row becomes the table
 * ```ts
 * import { ConfigError } from "@d3pm/experiment";
 * import { collectAblation, variantFolder, type VariantResult } from "@d3pm/experiment/studies";
 * import { assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
 * const out = await Deno.makeTempDir();
 * await assertRejects(() => collectAblation({ steps: 250, out }), ConfigError, `No variant of ${out} has finished at 250 steps`);
 * const row: VariantResult = {
 *   name: "d3pm no EMA", model: "d3pm", valid: 5.5, validBpt: 7.93, plateauExit: 0, seconds: 60,
 *   steps: 250, unigramEntropy: 6.7,
 * };
 * await Deno.mkdir(variantFolder(out, row.name));
 * await Deno.writeTextFile(`${variantFolder(out, row.name)}/results.json`, JSON.stringify(row));
 * assertEquals(await collectAblation({ steps: 250, out }), 1);
 * assertStringIncludes(await Deno.readTextFile(`${out}/ablation.md`), "| d3pm no EMA | ≤ 5.500");
 * assertEquals(JSON.parse(await Deno.readTextFile(`${out}/ablation.jsonl`)).name, "d3pm no EMA");
 * await Deno.remove(out, { recursive: true });
 * ```
 */
export async function collectAblation(
  options: { steps: number; out: string; partial?: boolean },
): Promise<number> {
  const { steps, out } = options;
  const planned = await plannedVariants(out, steps);
  const file = `${out}/ablation.jsonl`;
  const kept = await keptRows(file);
  let entropy: number | undefined;
  const found = new Set<string>();
  for (const v of grid(steps)) {
    // Bounded: a results.json that is a FIFO, a device or too large is
    // refused naming it; a missing one is a variant not yet run.
    const r = await readStudyJson(
      `${variantFolder(out, v.name)}/results.json`,
      "variant's results file",
    ) as VariantResult | undefined;
    if (r?.steps !== steps || r.name !== v.name) continue;
    const { steps: _, unigramEntropy, ...row } = r;
    keep(kept, row, steps);
    entropy = unigramEntropy;
    found.add(row.name);
  }
  const missing = (planned ?? []).filter((name) => !found.has(name));
  if (missing.length > 0 && !options.partial) {
    throw new ConfigError(
      `Cannot collect ${out}: ${missing.length} of ${
        planned!.length
      } planned variants have no results at ${steps} steps (${
        missing.join(", ")
      }): see deno task sweep status ${
        shellQuote(out)
      } and run them, or give --partial to make the table without them`,
    );
  }
  if (entropy === undefined) {
    throw new ConfigError(
      `No variant of ${out} has finished at ${steps} steps (no <variant>/results.json): run the cells first (deno task sweep run ${out} --on …)`,
    );
  }
  if (missing.length > 0) {
    console.error(
      `note: ${missing.length} planned variant(s) not in the table (--partial): ${
        missing.join(", ")
      }`,
    );
  }
  await Deno.mkdir(out, { recursive: true });
  await writeRows(file, kept);
  await writeTable(out, steps, kept, entropy, missing);
  return found.size;
}

/**
 * The variants `out/sweep.json` plans (undefined when `out` holds no
 * sweep); a plan at another budget than `steps` is refused.
 */
async function plannedVariants(
  out: string,
  steps: number,
): Promise<string[] | undefined> {
  if (!await pathExists(sweepPaths(out).json)) return undefined;
  const sweep = await readSweep(out);
  if (sweep.script !== "examples/ablate.ts") return undefined;
  const at = sweep.collect?.indexOf("--steps") ?? -1;
  const plannedSteps = at < 0 ? undefined : Number(sweep.collect![at + 1]);
  if (plannedSteps !== undefined && plannedSteps !== steps) {
    throw new ConfigError(
      `Cannot collect ${out} at --steps ${steps}: its sweep.json plans the variants at --steps ${plannedSteps}; collect with --steps ${plannedSteps}`,
    );
  }
  return sweep.cells.map((c) => String(c.values.variant));
}

/**
 * Every row of `file` (of every budget: a row without `steps` is of the
 * first ablation's 250), by budget and name, in the file's order. A line
 * that is not a row is refused naming it, before anything runs: rewriting
 * the file would otherwise lose it (and, once, every line after it).
 */
async function keptRows(file: string): Promise<Map<string, BudgetRow>> {
  const kept = new Map<string, BudgetRow>();
  const text = await readStudyText(file, "ablation rows file") ?? "";
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].trim()) continue;
    let row: unknown;
    let why = "not an object with a variant's name";
    try {
      row = JSON.parse(lines[i]);
    } catch (e) {
      why = `not JSON: ${(e as Error).message.split("\n")[0]}`;
    }
    const r = row as Partial<BudgetRow> | null;
    if (
      typeof r !== "object" || r === null || typeof r.name !== "string" ||
      !(r.steps === undefined || Number.isInteger(r.steps))
    ) {
      throw new ConfigError(
        `${file} line ${
          i + 1
        } is not a row of the ablation (${why}): fix or remove that line (nothing was run or rewritten)`,
      );
    }
    kept.set(JSON.stringify([r.steps ?? 250, r.name]), {
      ...r,
      steps: r.steps ?? 250,
    } as BudgetRow);
  }
  return kept;
}

/**
 * The ablation's table as Markdown.
 *
 * @param rows The rows, in table order.
 * @param steps Steps of the baseline.
 * @param entropy The train split's unigram entropy, nats.
 * @returns `ablation.md`.
 *
 * @example
 * ```ts
 * import { ablationMarkdown } from "@d3pm/experiment/studies";
 * import { assertStringIncludes } from "@std/assert";
 * const md = ablationMarkdown([
 *   { name: "d3pm no EMA", model: "d3pm", valid: 5.5, validBpt: 7.93, plateauExit: 0, seconds: 60 },
 * ], 250, 6.7);
 * assertStringIncludes(md, "| d3pm no EMA | ≤ 5.500");
 * assertStringIncludes(md, "| never ");
 * ```
 */
export function ablationMarkdown(
  rows: readonly AblationRow[],
  steps: number,
  entropy: number,
): string {
  const table = markdownTable(
    [
      "variant",
      "valid NLL (nats)",
      "valid BPT",
      "leaves plateau at step",
      "seconds",
    ],
    rows.map((r) => [
      r.name,
      `${r.model === "d3pm" ? "≤ " : ""}${fixed(r.valid, 3)}`,
      `${r.model === "d3pm" ? "≤ " : ""}${fixed(r.validBpt, 2)}`,
      r.plateauExit || "never",
      fixed(r.seconds, 0),
    ]),
  );
  return `# Ablation at ${steps} steps × 8 × 128 tokens (tiny preset, seed 0)\n\nUnigram entropy of the train split: ${
    fixed(entropy, 3)
  } nats. Validation: the first 64 blocks of the valid split.\n\n${table}\n`;
}
