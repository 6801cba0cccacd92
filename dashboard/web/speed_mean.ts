// The run page's speed–quality chart across seeds: per contestant trained
// with several seeds, the mean of each setting (a denoiser's step count, the
// AR model's one point) with a ± sd band of its gen PPL, drawn over the
// seeds' own points, faint. Pure: tested without a browser.
import type { ChartSeries } from "@d3pm/eval/chart";
import { summarize } from "@d3pm/eval/aggregate";
import {
  type ChartLabels,
  kindColor,
  speedPoints,
} from "@d3pm/experiment/charts";
import type { ModelResult } from "@d3pm/experiment";

/**
 * One series per contestant with more than one seed: at each setting every
 * seed has, the mean tokens/s and the mean gen PPL, with a band of ± the
 * sample sd of the gen PPL across seeds (the sd of tokens/s is not drawn:
 * the band is vertical). Contestants of one seed get none.
 *
 * @param results The run's results (one per contestant and seed).
 * @param labels How contestants are named.
 * @returns The mean series, coloured as the contestant's own.
 *
 * @example
 * ```ts
 * import { speedMeanSeries } from "./speed_mean.ts";
 * import { assertEquals } from "@std/assert";
 * const ar = (seed: number, tokensPerSecond: number, genPpl: number) => ({
 *   model: "ar", seed, generation: { speed: { tokensPerSecond }, genPpl, entropy: 4 },
 * }) as never;
 * const [mean] = speedMeanSeries([ar(0, 900, 20), ar(1, 1100, 22)], {
 *   label: () => "AR", validation: () => "NLL",
 * });
 * assertEquals(mean.points, [[1000, 21]]);
 * assertEquals(mean.band, [[1000, 21 - Math.SQRT2, 21 + Math.SQRT2]]);
 * ```
 */
export function speedMeanSeries(
  results: readonly ModelResult[],
  labels: ChartLabels,
): ChartSeries[] {
  const kinds = [...new Set(results.map((m) => m.model))];
  return kinds.flatMap((kind) => {
    const seeds = results.filter((m) => m.model === kind).map((m) =>
      speedPoints(m, labels.label(kind))
    );
    if (seeds.length < 2) return [];
    // Settings every seed has with finite figures (summarize refuses others).
    const settings = seeds[0].map((p) => p.label).filter((s) =>
      seeds.every((pts) =>
        pts.some((p) =>
          p.label === s && Number.isFinite(p.genPpl) &&
          Number.isFinite(p.tokensPerSecond)
        )
      )
    );
    const at = settings.map((s) => {
      const pts = seeds.map((ps) => ps.find((p) => p.label === s)!);
      const ppl = summarize(pts.map((p) => p.genPpl));
      const speed = summarize(pts.map((p) => p.tokensPerSecond)).mean;
      return { s, speed, ppl: ppl.mean, sd: ppl.sd };
    }).sort((a, b) => a.speed - b.speed);
    return [{
      name: `${labels.label(kind)}, mean ± sd over ${seeds.length} seeds`,
      points: at.map((p) => [p.speed, p.ppl] as [number, number]),
      labels: at.map((p) => p.s),
      band: at.map((p) => [p.speed, p.ppl - p.sd, p.ppl + p.sd]),
      color: kindColor(kind, kinds),
      markers: true,
      width: 2.5,
    }];
  });
}

/**
 * The speed–quality chart's series with the means over them: each seed of
 * a contestant that has a mean faint (its line at 0.3 opacity, no point
 * labels: the mean's say the settings), the means drawn last, on top.
 *
 * @param seeds The per-seed series (`speedQualityChart`'s).
 * @param means {@linkcode speedMeanSeries} of the same results.
 * @returns The series to draw.
 *
 * @example
 * ```ts
 * import { withSpeedMeans } from "./speed_mean.ts";
 * import { assertEquals } from "@std/assert";
 * const [faint, top] = withSpeedMeans(
 *   [{ name: "AR, seed 0", points: [[900, 20]], labels: ["AR"], color: "#1f77b4" }],
 *   [{ name: "AR, mean ± sd over 2 seeds", points: [[1000, 21]], color: "#1f77b4" }],
 * );
 * assertEquals([faint.opacity, faint.labels, top.name], [0.3, [], "AR, mean ± sd over 2 seeds"]);
 * ```
 */
export function withSpeedMeans(
  seeds: readonly ChartSeries[],
  means: readonly ChartSeries[],
): ChartSeries[] {
  const colors = new Set(means.map((m) => m.color));
  return [
    ...seeds.map((s) =>
      colors.has(s.color) ? { ...s, opacity: 0.3, labels: [] } : s
    ),
    ...means,
  ];
}
