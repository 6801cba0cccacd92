/**
 * Model-agnostic evaluation: scoring over blocks (`overBlocks`, with any
 * process's `score`), NLL as BPT, PPL and bits per byte; generation speed
 * (batches/s, tokens/s); generative perplexity under a judge, with entropy;
 * seed aggregation; and Markdown tables and SVG charts for reports.
 *
 * @example
 * ```ts
 * import { figures, summarize } from "@d3pm/eval";
 * import { assertAlmostEquals } from "@std/assert";
 * const seeds = [5.72, 9.41, 9.05].map((bpt) => figures(bpt * Math.LN2, { tokens: 1, bound: true }).bpt);
 * assertAlmostEquals(summarize(seeds).mean, 8.06, 1e-9);
 * ```
 *
 * @module
 */
export * from "./nll.ts";
export * from "./aggregate.ts";
export * from "./speed.ts";
export * from "./quality.ts";
export * from "./svg.ts";
export {
  chart,
  type ChartLayout,
  chartLayout,
  type ChartOptions,
  type ChartSeries,
  fromPixelX,
  linearTicks,
  logTicks,
  textWidth,
  tickLabel,
  toPixel,
  wrapText,
} from "./chart.ts";
export * from "./report.ts";
