/**
 * Evaluation: exact AR NLL and diffusion bounds as NLL, BPT, PPL and bits per
 * byte; generation and its speed (batches/s, tokens/s); sample quality
 * (generative perplexity with entropy, infilling); seed aggregation; and
 * Markdown tables and SVG charts for reports.
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
export * from "./generate.ts";
export * from "./quality.ts";
export * from "./svg.ts";
export * from "./report.ts";
