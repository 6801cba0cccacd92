/**
 * The run's charts as data: the training and validation curves from
 * `metrics.jsonl` records, and speed against quality from the results. The
 * report renders them to `loss.svg` and `speed_quality.svg`; the dashboard
 * renders the same series live in the browser (this module has no Deno or
 * tfjs dependency, and takes the contestants' labels as an argument).
 *
 * @module
 */
import type { ChartOptions, ChartSeries } from "@d3pm/eval/chart";
import type { ExperimentResult, ModelResult } from "./results.ts";

/** A chart: its series and its options. */
export interface ChartSpec {
  /** The series. */
  series: ChartSeries[];
  /** Title, axes. */
  options: ChartOptions;
}

/** How a contestant is named and coloured in a chart. */
export interface ChartLabels {
  /**
   * The short label of a contestant (`AR`, `D3PM`).
   *
   * @param kind The contestant's kind.
   * @returns Its label.
   */
  label(kind: string): string;
  /**
   * What its validation figure is (`NLL`, `bound`).
   *
   * @param kind The contestant's kind.
   * @returns The name.
   */
  validation(kind: string): string;
}

/** Options of {@linkcode lossChart}. */
export interface LossChartOptions {
  /** `mean`: one line per model with a ± sd band across seeds (default when there are several); `seeds`: one line per seed. */
  mode?: "mean" | "seeds";
  /** Only these contestants (default: all in the records). */
  kinds?: readonly string[];
  /** Width of the chart. */
  width?: number;
  /** Height of the chart. */
  height?: number;
}

const KIND_COLORS: Record<string, string> = {
  ar: "#0b6fb0",
  d3pm: "#d1495b",
  mlm: "#2a9d5c",
};
const EXTRA = ["#e08a00", "#7b4fb2", "#8c564b", "#c2549d"];

/**
 * The colour of a contestant, the same in every chart.
 *
 * @param kind The contestant's kind.
 * @param kinds Every kind of the chart (for ones without a fixed colour).
 * @returns A CSS colour.
 *
 * @example
 * ```ts
 * import { kindColor } from "@d3pm/experiment/charts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(kindColor("ar", ["ar"]), "#0b6fb0");
 * ```
 */
export function kindColor(kind: string, kinds: readonly string[]): string {
  return KIND_COLORS[kind] ??
    EXTRA[
      Math.max(0, kinds.filter((k) => !KIND_COLORS[k]).indexOf(kind)) %
      EXTRA.length
    ];
}

/** Per model and seed: training loss and validation points, a resumed run's redone steps replaced. */
export interface Curves {
  /** `kind` → `seed` → points. */
  train: Map<string, Map<number, [number, number][]>>;
  /** `kind` → `seed` → points. */
  valid: Map<string, Map<number, [number, number][]>>;
}

/**
 * The most points {@linkcode curvesOf} keeps of one curve (one model, seed
 * and kind of record). A curve of up to this many records is kept as it is;
 * a longer one is thinned to buckets of steps, so a log of millions of steps
 * draws in memory bounded by this count.
 *
 * @example
 * ```ts
 * import { CURVE_POINTS, curvesOf } from "@d3pm/experiment/charts";
 * import { assert } from "@std/assert";
 * const steps = Array.from({ length: 10_000 }, (_, i) => ({ model: "ar", seed: 0, step: i + 1, loss: 1 }));
 * assert(curvesOf(steps).train.get("ar")!.get(0)!.length <= CURVE_POINTS);
 * ```
 */
export const CURVE_POINTS = 4096;

/** A thinned curve's bookkeeping, keyed by its points array. */
interface Thinning {
  /** Steps per bucket: 1, then doubled each time the curve fills. */
  stride: number;
  /** Records averaged into each point (the first point is always 1). */
  counts: number[];
}

const THINNING = new WeakMap<[number, number][], Thinning>();

/**
 * Add one record to a curve, keeping at most `max` points. Point 0 is the
 * curve's first record, exact; every other is a bucket of the steps `stride`
 * apart (`floor(step / stride)`): the mean of its records, at the bucket's
 * last step on the grid (`bucketEnd`) — the curve's last point at its last
 * record's step. While `stride` is 1 each record is its own point, so a curve
 * of at most `max` records is unchanged. When the curve passes `max` points
 * the stride doubles (neighbouring buckets merge, weighted by their counts)
 * until it holds at most 3/4 of `max`. Buckets sit on a grid of steps, not
 * of records, and their points at the grid's steps, so seeds logged alike,
 * one resumed, or one logged at another interval keep the same x values for
 * their mean. A step at or before the last record's (a resumed run) drops
 * the points at or after it: a bucket straddling the step loses its records
 * before the step too (at most `stride - 1`).
 */
function addPoint(
  pts: [number, number][],
  step: number,
  y: number,
  max: number,
): void {
  let t = THINNING.get(pts);
  if (!t) THINNING.set(pts, t = { stride: 1, counts: pts.map(() => 1) });
  while (pts.length > 0 && pts[pts.length - 1][0] >= step) {
    pts.pop();
    t.counts.pop();
  }
  const last = pts.length - 1;
  if (
    last >= 1 &&
    Math.floor(pts[last][0] / t.stride) === Math.floor(step / t.stride)
  ) {
    const n = t.counts[last];
    pts[last] = [step, (pts[last][1] * n + y) / (n + 1)];
    t.counts[last] = n + 1;
  } else {
    // The bucket before is complete: at its grid step from now on.
    if (last >= 1) pts[last][0] = bucketEnd(pts[last][0], t.stride);
    pts.push([step, y]);
    t.counts.push(1);
  }
  while (pts.length > max) {
    do t.stride *= 2; while (coarsen(pts, t) > (3 * max) / 4);
  }
}

// The last step of the bucket of `step` at `stride`.
function bucketEnd(step: number, stride: number): number {
  return (Math.floor(step / stride) + 1) * stride - 1;
}

/**
 * Merge the buckets after point 0 that share a bucket at `t.stride`, each
 * at its grid step but the last (at its last record's); the points left.
 */
function coarsen(pts: [number, number][], t: Thinning): number {
  let k = 0; // the last point kept
  for (let i = 1; i < pts.length; i++) {
    const n = t.counts[i];
    if (
      k >= 1 &&
      Math.floor(pts[k][0] / t.stride) === Math.floor(pts[i][0] / t.stride)
    ) {
      const m = t.counts[k];
      pts[k] = [pts[i][0], (pts[k][1] * m + pts[i][1] * n) / (m + n)];
      t.counts[k] = m + n;
    } else {
      pts[++k] = pts[i];
      t.counts[k] = n;
    }
  }
  pts.length = t.counts.length = k + 1;
  for (let i = 1; i < k; i++) pts[i][0] = bucketEnd(pts[i][0], t.stride);
  return pts.length;
}

/**
 * Sort `metrics.jsonl` records into curves. Records that are not a model's
 * step (no `model`, `seed` and finite `step`, or neither `loss` nor `valid`) are
 * skipped; a step at or before the last one of its curve (a resumed run)
 * replaces what came after it. Each curve keeps at most `max` points: its
 * first record, then means over buckets of steps that double in width as it
 * fills, so memory is bounded whatever the log's length; a curve of at most
 * `max` records is kept exactly. Figures a report prints never come from
 * here.
 *
 * @param records The parsed lines, in file order.
 * @param into Curves to add to (the dashboard appends as lines arrive).
 * @param max Most points per curve, at least 4 (default
 *   {@linkcode CURVE_POINTS}).
 * @returns The curves.
 *
 * @example
 * ```ts
 * import { curvesOf } from "@d3pm/experiment/charts";
 * import { assertEquals } from "@std/assert";
 * const c = curvesOf([
 *   { model: "ar", seed: 0, step: 1, loss: 5 },
 *   { model: "ar", seed: 0, step: 2, loss: 4 },
 *   { model: "ar", seed: 0, step: 2, loss: 3.5 }, // resumed: step 2 again
 *   { model: "ar", seed: 0, step: 2, valid: 4.2 },
 * ]);
 * assertEquals(c.train.get("ar")!.get(0), [[1, 5], [2, 3.5]]);
 * assertEquals(c.valid.get("ar")!.get(0), [[2, 4.2]]);
 * ```
 *
 * @example A long curve is thinned to bucket means
 * ```ts
 * import { curvesOf } from "@d3pm/experiment/charts";
 * import { assertEquals } from "@std/assert";
 * const steps = [1, 2, 3, 4, 5].map((step) => ({ model: "ar", seed: 0, step, loss: step }));
 * const c = curvesOf(steps, undefined, 4);
 * // the first step, then steps 2–3, 4–5 (buckets of 2 steps)
 * assertEquals(c.train.get("ar")!.get(0), [[1, 1], [3, 2.5], [5, 4.5]]);
 * ```
 */
export function curvesOf(
  records: Iterable<Record<string, unknown>>,
  into?: Curves,
  max: number = CURVE_POINTS,
): Curves {
  if (!Number.isInteger(max) || max < 4) {
    throw new RangeError(
      `Cannot build curves: max must be an integer of at least 4, got ${max}`,
    );
  }
  const curves = into ?? { train: new Map(), valid: new Map() };
  for (const r of records) {
    const kind = r.model, seed = r.seed, step = r.step;
    if (
      typeof kind !== "string" || typeof seed !== "number" ||
      typeof step !== "number" || !Number.isFinite(step)
    ) continue;
    const isValid = typeof r.valid === "number";
    const y = isValid ? r.valid : r.loss;
    if (typeof y !== "number" || !Number.isFinite(y)) continue;
    const table = isValid ? curves.valid : curves.train;
    const bySeed = table.get(kind) ?? new Map<number, [number, number][]>();
    table.set(kind, bySeed);
    const pts = bySeed.get(seed) ?? [];
    bySeed.set(seed, pts);
    addPoint(pts, step, y, max);
  }
  return curves;
}

/**
 * A trailing moving average over about 1/50 of the points.
 *
 * @param pts Points in x order.
 * @returns Smoothed points, at the same x.
 *
 * @example
 * ```ts
 * import { smooth } from "@d3pm/experiment/charts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(smooth([[1, 2], [2, 4]]), [[1, 2], [2, 4]]); // too few to smooth
 * ```
 */
export function smooth(pts: readonly [number, number][]): [number, number][] {
  const w = Math.max(1, Math.floor(pts.length / 50));
  const out: [number, number][] = [];
  let sum = 0;
  for (let i = 0; i < pts.length; i++) {
    sum += pts[i][1] - (i >= w ? pts[i - w][1] : 0);
    out.push([pts[i][0], sum / Math.min(i + 1, w)]);
  }
  return out;
}

/**
 * Curves thinned to different strides (one seed longer than
 * {@linkcode CURVE_POINTS} records, another logged every 10th step) share
 * few x values; each is brought onto the coarsest stride's grid for their
 * mean (bucket means weighted by their records, at the grid's steps; the
 * first and last points as they are). Curves of one stride are returned
 * as they are.
 */
function onCommonGrid(curves: [number, number][][]): [number, number][][] {
  const strides = curves.map((c) => THINNING.get(c)?.stride ?? 1);
  const stride = Math.max(...strides);
  if (strides.every((s) => s === stride)) return curves;
  return curves.map((c, i) => {
    if (strides[i] === stride) return c;
    const counts = THINNING.get(c)?.counts ?? c.map(() => 1);
    const out: [number, number][] = [], n: number[] = [];
    c.forEach(([x, y], j) => {
      const k = out.length - 1, w = counts[j] ?? 1;
      if (k >= 1 && Math.floor(out[k][0] / stride) === Math.floor(x / stride)) {
        out[k] = [x, (out[k][1] * n[k] + y * w) / (n[k] + w)];
        n[k] += w;
      } else {
        out.push([x, y]);
        n.push(w);
      }
    });
    for (let j = 1; j < out.length - 1; j++) {
      out[j][0] = bucketEnd(out[j][0], stride);
    }
    return out;
  });
}

/**
 * Mean and sample sd across curves at the x values all of them have.
 *
 * @param curves The curves (e.g. one per seed).
 * @returns `[x, mean, sd]` per common x.
 *
 * @example
 * ```ts
 * import { meanCurve } from "@d3pm/experiment/charts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(meanCurve([[[1, 2], [2, 4]], [[1, 4], [2, 4]]]), [[1, 3, Math.SQRT2], [2, 4, 0]]);
 * ```
 */
export function meanCurve(
  curves: readonly (readonly [number, number][])[],
): [number, number, number][] {
  if (curves.length === 0) return [];
  const maps = curves.map((c) => new Map(c));
  const out: [number, number, number][] = [];
  for (const [x] of curves[0]) {
    const ys = maps.map((m) => m.get(x));
    if (ys.some((y) => y === undefined)) continue;
    const v = ys as number[];
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = v.length > 1
      ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1))
      : 0;
    out.push([x, mean, sd]);
  }
  return out;
}

/**
 * The training and validation chart: per contestant one colour, training
 * solid (smoothed), validation dashed with markers; across several seeds the
 * mean with a ± sd band and each seed faint behind it, or each seed alone.
 * Its title names only the contestants that have curves.
 *
 * @param curves The curves ({@linkcode curvesOf}).
 * @param labels How contestants are named.
 * @param options Mean or per seed, which contestants, size.
 * @returns The chart.
 *
 * @example
 * ```ts
 * import { curvesOf, lossChart } from "@d3pm/experiment/charts";
 * import { assertEquals } from "@std/assert";
 * const c = curvesOf([{ model: "ar", seed: 0, step: 1, loss: 5 }, { model: "ar", seed: 0, step: 1, valid: 5.2 }]);
 * const spec = lossChart(c, { label: (k) => k.toUpperCase(), validation: () => "NLL" });
 * assertEquals(spec.series.map((s) => s.name), ["AR train", "AR valid (NLL)"]);
 * ```
 */
export function lossChart(
  curves: Curves,
  labels: ChartLabels,
  options: LossChartOptions = {},
): ChartSpec {
  const kinds = options.kinds ??
    [...new Set([...curves.train.keys(), ...curves.valid.keys()])];
  const series: ChartSeries[] = [];
  for (const kind of kinds) {
    const color = kindColor(kind, kinds);
    const name = labels.label(kind);
    for (const which of ["train", "valid"] as const) {
      const bySeed = (which === "train" ? curves.train : curves.valid).get(
        kind,
      );
      if (!bySeed || bySeed.size === 0) continue;
      const what = which === "train"
        ? "train"
        : `valid (${labels.validation(kind)})`;
      series.push(
        ...curveSeries(bySeed, {
          which,
          name: `${name} ${what}`,
          color,
          mode: options.mode,
        }),
      );
    }
  }
  return {
    series,
    options: {
      title: "Training loss and validation (nats per token)",
      xLabel: "step",
      yLabel: "nats per token",
      width: options.width,
      height: options.height,
      note: kinds.length
        ? `Validation: ${
          kinds.map((k) => `${labels.label(k)} ${labels.validation(k)}`).join(
            ", ",
          )
        }. Training curves smoothed.${
          seedCount(curves) > 1 && (options.mode ?? "mean") === "mean"
            ? ` Mean ± sd over ${seedCount(curves)} seeds; each seed faint.`
            : ""
        }`
        : undefined,
    },
  };
}

/**
 * The lines of one contestant's training or validation curve: each seed's,
 * or their mean ± sd with each seed faint behind it.
 */
function curveSeries(
  bySeed: Map<number, [number, number][]>,
  o: {
    which: "train" | "valid";
    name: string;
    color: string;
    mode: LossChartOptions["mode"];
  },
): ChartSeries[] {
  const { which, name, color } = o;
  const series: ChartSeries[] = [];
  const seeds = [...bySeed.keys()].sort((a, b) => a - b);
  const prep = (p: [number, number][]) => which === "train" ? smooth(p) : p;
  const style = which === "valid"
    ? { dashed: true, markers: true }
    : { markers: false };
  const mode = o.mode ?? (seeds.length > 1 ? "mean" : "seeds");
  if (mode === "seeds" || seeds.length === 1) {
    seeds.forEach((seed, k) =>
      series.push({
        name: seeds.length > 1 ? `${name}, seed ${seed}` : name,
        points: prep(bySeed.get(seed)!),
        color,
        opacity: seeds.length > 1 ? Math.max(0.45, 1 - 0.2 * k) : 1,
        ...style,
      })
    );
    return series;
  }
  for (const seed of seeds) {
    series.push({
      name: `${name}, seed ${seed}`,
      points: prep(bySeed.get(seed)!),
      color,
      width: 1,
      opacity: 0.3,
      markers: false,
      dashed: which === "valid",
      hideInLegend: true,
    });
  }
  const mean = meanCurve(
    onCommonGrid(seeds.map((s) => bySeed.get(s)!)).map(prep),
  );
  series.push({
    name: `${name}, mean ± sd`,
    points: mean.map(([x, m]) => [x, m]),
    band: mean.map(([x, m, sd]) => [x, m - sd, m + sd]),
    color,
    width: 2.25,
    ...style,
  });
  return series;
}

function seedCount(c: Curves): number {
  let n = 0;
  for (const m of c.train.values()) n = Math.max(n, m.size);
  return n;
}

/** One point of the speed–quality chart of a result: a setting and its figures. */
export interface SpeedPoint {
  /** The setting's label (`AR`, `16 steps`). */
  label: string;
  /** Tokens per second generated. */
  tokensPerSecond: number;
  /** Generative perplexity under the judge. */
  genPpl: number;
}

/**
 * The points of one result: a denoiser's step counts (its `curve`), else
 * its one generation setting.
 *
 * @param m A result.
 * @param label Its contestant's short label.
 * @returns Its points, in order of tokens/s.
 *
 * @example
 * ```ts
 * import { speedPoints } from "@d3pm/experiment/charts";
 * import { assertEquals } from "@std/assert";
 * const p = speedPoints({
 *   model: "ar",
 *   generation: { speed: { tokensPerSecond: 900 }, genPpl: 20, entropy: 4 },
 * } as never, "AR");
 * assertEquals(p, [{ label: "AR", tokensPerSecond: 900, genPpl: 20 }]);
 * ```
 */
export function speedPoints(m: ModelResult, label: string): SpeedPoint[] {
  const curve = (m as {
    curve?: {
      steps: number;
      speed: { tokensPerSecond: number };
      genPpl: number;
    }[];
  })
    .curve;
  const pts = curve && curve.length
    ? curve.map((p) => ({
      label: `${p.steps} steps`,
      tokensPerSecond: p.speed.tokensPerSecond,
      genPpl: p.genPpl,
    }))
    : [{
      label,
      tokensPerSecond: m.generation.speed.tokensPerSecond,
      genPpl: m.generation.genPpl,
    }];
  return pts.sort((a, b) => a.tokensPerSecond - b.tokensPerSecond);
}

/**
 * Generation speed against sample quality: one series per contestant and
 * seed, each point labelled with its setting (a denoiser's step count), on
 * a log axis of tokens/s.
 *
 * @param r The run's results (or several runs' results, concatenated).
 * @param labels How contestants are named.
 * @param options Size, and a prefix for series names (e.g. a run id).
 * @returns The chart.
 *
 * @example
 * ```ts
 * import { speedQualityChart } from "@d3pm/experiment/charts";
 * import { assertEquals } from "@std/assert";
 * const r = { results: [{
 *   model: "ar", seed: 0, generation: { speed: { tokensPerSecond: 900 }, genPpl: 20, entropy: 4 },
 * }] } as never;
 * const spec = speedQualityChart(r, { label: () => "AR", validation: () => "NLL" });
 * assertEquals(spec.series[0].labels, ["AR"]);
 * ```
 */
export function speedQualityChart(
  r: Pick<ExperimentResult, "results">,
  labels: ChartLabels,
  options: { width?: number; height?: number; prefix?: string } = {},
): ChartSpec {
  const kinds = [...new Set(r.results.map((m) => m.model))];
  const seedsOf = (k: string) => r.results.filter((m) => m.model === k).length;
  const series: ChartSeries[] = r.results.map((m) => {
    const pts = speedPoints(m, labels.label(m.model));
    const many = seedsOf(m.model) > 1;
    return {
      name: `${options.prefix ?? ""}${labels.label(m.model)}${
        many ? `, seed ${m.seed}` : ""
      }`,
      points: pts.map((p) => [p.tokensPerSecond, p.genPpl] as [number, number]),
      labels: pts.map((p) => p.label),
      color: kindColor(m.model, kinds),
      dashed: m.seed > 0,
      markers: true,
    };
  });
  return {
    series,
    options: {
      title: "Generation speed against sample quality",
      xLabel: "tokens/s generated (log scale)",
      yLabel: "gen PPL under the judge (lower is better)",
      logX: true,
      width: options.width,
      height: options.height,
    },
  };
}
