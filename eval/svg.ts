/**
 * Small, dependency-free SVG line charts for reports.
 *
 * @module
 */

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

const COLORS = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
];

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0)!;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) {
    out.push(+v.toPrecision(12));
  }
  return out;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(0);
  return String(+v.toPrecision(4));
}

/**
 * An SVG line chart (640 × 400) with axes, ticks and a legend.
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
  const W = 640, H = 400, L = 70, R = 20, T = 40, B = 55;
  const fx = options.logX ? Math.log10 : (x: number) => x;
  const pts = series.flatMap((s) => s.points).filter(([x, y]) =>
    Number.isFinite(fx(x)) && Number.isFinite(y)
  );
  const xs = pts.map(([x]) => fx(x)), ys = pts.map(([, y]) => y);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (!pts.length) [x0, x1, y0, y1] = [0, 1, 0, 1];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  const sx = (x: number) => L + ((fx(x) - x0) / (x1 - x0)) * (W - L - R);
  const sy = (y: number) => H - B - ((y - y0) / (y1 - y0)) * (H - T - B);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${
      esc(options.title)
    }</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${
      H - B
    }" stroke="black"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
  ];
  const xTicks = options.logX
    ? ticks(
      Math.floor(x0),
      Math.ceil(x1),
      Math.max(1, Math.ceil(x1) - Math.floor(x0)),
    ).map((e) => 10 ** e)
    : ticks(x0, x1);
  for (const v of xTicks) {
    const x = sx(v);
    if (x < L - 1 || x > W - R + 1) continue;
    out.push(
      `<line x1="${x}" y1="${H - B}" x2="${x}" y2="${
        H - B + 5
      }" stroke="black"/>`,
    );
    out.push(
      `<text x="${x}" y="${H - B + 18}" text-anchor="middle">${fmt(v)}</text>`,
    );
  }
  for (const v of ticks(y0, y1)) {
    const y = sy(v);
    out.push(
      `<line x1="${L - 5}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#ddd"/>`,
    );
    out.push(
      `<text x="${L - 8}" y="${y + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  out.push(
    `<text x="${(L + W - R) / 2}" y="${H - 15}" text-anchor="middle">${
      esc(options.xLabel)
    }</text>`,
  );
  out.push(
    `<text x="16" y="${
      (T + H - B) / 2
    }" text-anchor="middle" transform="rotate(-90 16 ${(T + H - B) / 2})">${
      esc(options.yLabel)
    }</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const p = s.points.filter(([x, y]) =>
      Number.isFinite(fx(x)) && Number.isFinite(y)
    );
    if (p.length) {
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${
          p.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ")
        }"/>`,
      );
      if (options.markers ?? p.length <= 30) {
        for (const [x, y] of p) {
          out.push(
            `<circle cx="${sx(x).toFixed(1)}" cy="${
              sy(y).toFixed(1)
            }" r="3" fill="${color}"/>`,
          );
        }
      }
    }
    const ly = T + 8 + i * 16;
    out.push(
      `<line x1="${W - R - 130}" y1="${ly}" x2="${
        W - R - 110
      }" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
    );
    out.push(`<text x="${W - R - 105}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}
