/**
 * Small, dependency-free SVG line charts for reports (the simple form of
 * {@linkcode chart}).
 *
 * @module
 */
import { chart } from "./chart.ts";

/** One line of a chart. */
export interface Series {
  /** Legend text. */
  name: string;
  /** `[x, y]` points, in order of x. */
  points: [number, number][];
}

/** Options of {@linkcode lineChart}. */
export interface LineChartOptions {
  /** Title above the plot. */
  title: string;
  /** X axis label. */
  xLabel: string;
  /** Y axis label. */
  yLabel: string;
  /** Logarithmic x axis (all x > 0). */
  logX?: boolean;
  /** Draw a marker at every point (default: when a series has ≤ 30 points). */
  markers?: boolean;
}

/**
 * An SVG line chart with axes, ticks and a legend beside the plot
 * ({@linkcode chart} with one style per series).
 *
 * @param series The lines.
 * @param options Title, labels, log axis.
 * @returns The SVG document.
 *
 * @example
 * ```ts
 * import { lineChart } from "@d3pm/eval";
 * import { assert } from "@std/assert";
 * const svg = lineChart([{ name: "AR", points: [[0, 5], [100, 3]] }], {
 *   title: "loss", xLabel: "step", yLabel: "nats",
 * });
 * assert(svg.startsWith("<svg") && svg.includes("AR"));
 * ```
 */
export function lineChart(series: Series[], options: LineChartOptions): string {
  return chart(
    series.map((s) => ({
      name: s.name,
      points: s.points,
      ...(options.markers !== undefined ? { markers: options.markers } : {}),
    })),
    options,
  );
}
