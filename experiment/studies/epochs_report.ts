/**
 * The data-constrained study's report: `report.md` with the comparison at
 * every U and the AR's sweep, and its charts (validation against epochs and
 * against FLOPs, the sweep).
 *
 * @module
 */
import { writeFileAtomic } from "@d3pm/core";
import { fixed, lineChart, markdownTable, type Series } from "@d3pm/eval";
import type { ExperimentConfig } from "../options.ts";
import {
  bestPoint,
  compareCurves,
  describeVerdict,
  sci,
} from "./epochs_analysis.ts";
import type { RunCurve, StudyScale } from "./epochs_scale.ts";

/** What the report says of the study besides its runs. */
export interface StudyReportContext {
  /** The study's folder. */
  out: string;
  /** The study's sizes. */
  scale: StudyScale;
  /** The configuration every run starts from. */
  base: ExperimentConfig;
  /** Parameters of each model. */
  params: number;
  /** Seed of the models and batches. */
  seed: number;
  /**
   * The train split's unigram entropy, nats (absent: unknown, and the
   * report says nothing of the unigram plateau).
   */
  unigramEntropy?: number;
  /**
   * The engine the runs trained on (`cpu`; absent: not recorded, and the
   * report gives the one configured).
   */
  trainedOn?: string;
}

/**
 * Nats below the unigram entropy within which a D3PM's best validation
 * counts as the unigram plateau (the margin of `plateauExit`).
 */
export const PLATEAU_MARGIN = 0.25;

/**
 * A count of unique tokens, short: `10K`, `1M`.
 *
 * @param u The count.
 * @returns Its short form.
 */
function kilo(u: number): string {
  return u >= 1e6 ? `${u / 1e6}M` : u >= 1e3 ? `${u / 1e3}K` : `${u}`;
}

/**
 * Write the figures and the report from the runs finished so far.
 *
 * @param ctx The study.
 * @param runs Its finished runs.
 * @param chosen The sweep's winner, once chosen.
 * @param seconds Wall time so far.
 */
export async function writeStudyReport(
  ctx: StudyReportContext,
  runs: readonly RunCurve[],
  chosen: { dropout: number; weightDecay: number } | undefined,
  seconds: number,
): Promise<void> {
  await writeCharts(ctx.out, runs);
  const { out, scale, base } = ctx;
  const sweep = runs.filter((r) => r.phase === "sweep");
  const sweepTable = markdownTable(
    ["dropout", "weight decay", "best epoch", "best valid NLL", "epochs run"],
    sweepRows(scale, sweep),
  );
  const planned = scale.dropouts.length * scale.decays.length;
  const missing = scale.u.filter((u) =>
    !["ar", "d3pm"].every((m) =>
      runs.some((r) => r.phase === "main" && r.u === u && r.model === m)
    )
  );
  await writeFileAtomic(
    `${out}/report.md`,
    `# Data-constrained study: AR vs D3PM over many epochs

Preset ${base.preset} for both models (${ctx.params} parameters, context ${base.blockLength}, batch ${scale.batchSize}), seed ${ctx.seed}; each run trains on ${scale.tokens} tokens rounded to whole epochs (epochs = tokens / U) with a cosine schedule over them, validated every epoch on the first ${base.validBlocks} valid blocks; an AR run stops after ${scale.patience} epochs without a new best, ${
      scale.d3pmPatience !== undefined
        ? `a D3PM run after ${scale.d3pmPatience}`
        : `a D3PM run goes to the end${plateauNote(ctx, runs)}`
    }. U: a prefix of the train split, by articles. AR: exact NLL; D3PM: its ELBO bound with one fixed set of draws (an upper bound). FLOPs: 6 · parameters · training tokens. ${
      chosen
        ? `AR dropout ${chosen.dropout} and weight decay ${chosen.weightDecay}, ${
          scale.dropouts.length * scale.decays.length > 1
            ? "chosen by the sweep below"
            : "the one setting given (no sweep)"
        }; the D3PM keeps the preset's (dropout ${base.dropout}, weight decay ${base.weightDecay}).`
        : ""
    } ${settingsLine(scale, base, ctx.trainedOn)} Wall time so far: ${
      fixed(seconds / 60, 1)
    } minutes.
${
      missing.length
        ? `
**Unfinished:** U = ${
          missing.map(kilo).join(", ")
        } not run — interrupted or in progress; the figures below are of the runs finished.
`
        : ""
    }
${comparison(scale, runs)}

![validation against epochs](valid-vs-epochs.svg)
![validation against FLOPs](valid-vs-flops.svg)
${
      planned > 1
        ? `
## AR regularisation sweep (U = ${
          kilo(scale.u[0])
        }; the lowest best valid NLL wins)

${sweepTable}
${sweep.length ? "\n![sweep](sweep.svg)\n" : ""}`
        : ""
    }`,
  );
}

/**
 * Why the D3PM runs go to the end, where the data says so: the D3PM runs
 * (without patience) whose best validation is within `PLATEAU_MARGIN` nats
 * of the unigram entropy (either side) sat on the unigram plateau. Empty
 * when none did (a run still above it has not reached it; one below it has
 * left it), or the entropy is unknown.
 */
function plateauNote(
  ctx: StudyReportContext,
  runs: readonly RunCurve[],
): string {
  const h = ctx.unigramEntropy;
  if (h === undefined) return "";
  const flat = runs.filter((r) =>
    r.phase === "main" && r.model === "d3pm" &&
    Math.abs(bestPoint(r.curve).valid - h) <= PLATEAU_MARGIN
  );
  if (!flat.length) return "";
  return ` (at U = ${
    flat.map((r) => kilo(r.u)).join(", ")
  } its best bound is within ${PLATEAU_MARGIN} nat of the train split's unigram entropy, ${
    fixed(h, 3)
  } nats: it sits on the unigram plateau, where a patience rule would cut it off)`;
}

/**
 * The models' training settings and the engine, in one sentence: the AR's
 * lr as it trained (`arLr` 0 means the D3PM's), the engine that ran.
 */
function settingsLine(
  scale: StudyScale,
  base: ExperimentConfig,
  trainedOn: string | undefined,
): string {
  const engine = trainedOn ??
    (base.engine === "auto"
      ? "auto (which one it chose is not recorded)"
      : base.engine);
  const alibi = base.alibi > 0
    ? `ALiBi slope ${base.alibi} (${base.alibiMode})`
    : "no ALiBi";
  return `Training settings ${scale.settings} (${
    scale.settings === "pinned" && base.preset === "tiny"
      ? "the tiny preset's when the study's first figures were measured"
      : `the ${base.preset} preset's`
  }): AR lr ${
    base.arLr > 0 ? base.arLr : base.lr
  }, D3PM lr ${base.lr} with t ∈ [${base.tMin}, ${base.tMax}] and ${alibi}, warm-up ${base.warmup} steps (all of a shorter run's), EMA ${base.emaDecay}; engine ${engine}.`;
}

/**
 * The sweep table's rows: each planned setting (dropouts × decays) with
 * its run, or "not run" where it has none yet.
 */
function sweepRows(
  scale: StudyScale,
  sweep: readonly RunCurve[],
): (string | number)[][] {
  return scale.dropouts.flatMap((dropout) =>
    scale.decays.map((weightDecay) => {
      const r = sweep.find((r) =>
        r.dropout === dropout && r.weightDecay === weightDecay
      );
      if (!r) {
        return [
          dropout,
          weightDecay,
          "—",
          "—",
          "not run — interrupted or in progress",
        ];
      }
      const b = bestPoint(r.curve);
      return [
        dropout,
        weightDecay,
        b.epoch,
        fixed(b.valid, 3),
        `${r.curve.at(-1)!.epoch} of ${r.epochs}`,
      ];
    })
  );
}

/**
 * The table of every U planned, with both models or "not run", and a
 * sentence on each.
 */
function comparison(scale: StudyScale, runs: readonly RunCurve[]): string {
  const main = runs.filter((r) => r.phase === "main");
  const rows: (string | number)[][] = [];
  const sentences: string[] = [];
  for (const u of scale.u) {
    const ar = main.find((r) => r.u === u && r.model === "ar");
    const d = main.find((r) => r.u === u && r.model === "d3pm");
    if (!ar || !d) {
      rows.push([kilo(u), "not run", ...Array(7).fill("—")]);
      sentences.push(
        `- U = ${kilo(u)}: not run — interrupted or in progress.`,
      );
      continue;
    }
    const v = compareCurves(ar.curve, d.curve);
    rows.push([
      kilo(u),
      `${ar.curve.at(-1)!.epoch} of ${ar.epochs}`,
      `${v.arBest.epoch}`,
      fixed(v.arBest.valid, 3),
      `${v.arOverfits ? "+" : ""}${fixed(v.arRise, 3)}`,
      `${d.curve.at(-1)!.epoch} of ${d.epochs}`,
      `${v.d3pmBest.epoch}`,
      `≤ ${fixed(v.d3pmBest.valid, 3)}`,
      v.crossover
        ? `epoch ${v.crossover.epoch} (${sci(v.crossover.flops)} FLOPs)`
        : "none",
    ]);
    sentences.push(`- U = ${kilo(u)}: ${describeVerdict(v)}.`);
  }
  const table = markdownTable(
    [
      "U",
      "AR epochs run",
      "AR best epoch",
      "AR best NLL",
      "AR last − best",
      "D3PM epochs run",
      "D3PM best epoch",
      "D3PM best bound",
      "D3PM below AR best",
    ],
    rows,
  );
  return `${table}\n\n${sentences.join("\n")}`;
}

/** The charts: validation against epochs and FLOPs, and the sweep. */
async function writeCharts(
  out: string,
  runs: readonly RunCurve[],
): Promise<void> {
  const main = runs.filter((r) => r.phase === "main");
  const label = (r: RunCurve) =>
    `${r.model === "ar" ? "AR" : "D3PM ≤"} U=${kilo(r.u)}`;
  const series = (x: "epoch" | "flops"): Series[] =>
    main.map((r) => ({
      name: label(r),
      points: r.curve.map((p) => [p[x], p.valid] as [number, number]),
    }));
  const yLabel = "valid nats/token (AR: NLL, D3PM: bound)";
  await Deno.writeTextFile(
    `${out}/valid-vs-epochs.svg`,
    lineChart(series("epoch"), {
      title: "Validation loss against epochs over U unique tokens",
      xLabel: "epochs",
      yLabel,
      markers: false,
    }),
  );
  await Deno.writeTextFile(
    `${out}/valid-vs-flops.svg`,
    lineChart(series("flops"), {
      title: "Validation loss against training FLOPs (6·N·D)",
      xLabel: "training FLOPs",
      yLabel,
      logX: true,
      markers: false,
    }),
  );
  const sweep = runs.filter((r) => r.phase === "sweep");
  if (!sweep.length) return;
  await Deno.writeTextFile(
    `${out}/sweep.svg`,
    lineChart(
      sweep.map((r) => ({
        name: `dropout ${r.dropout}, wd ${r.weightDecay}`,
        points: r.curve.map((p) => [p.epoch, p.valid] as [number, number]),
      })),
      {
        title: `AR regularisation sweep, U=${kilo(sweep[0].u)}`,
        xLabel: "epochs",
        yLabel: "valid NLL (nats/token)",
        markers: false,
      },
    ),
  );
}
