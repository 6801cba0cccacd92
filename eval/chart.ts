/**
 * Charts as SVG text, with no DOM: the same code draws the report's static
 * SVGs (in Deno) and the dashboard's interactive charts (in the browser,
 * which adds hover on top of {@linkcode chartLayout}). What it takes care of:
 * a title wrapped to the width (never clipped), the legend beside the plot
 * (never over data), nice ticks on linear and log axes (1-2-5 within a
 * decade, more than one label), a margin so no point sits on the border,
 * point labels (e.g. a sampler's step count), mean ± sd bands, dashed
 * series, and a `<title>` tooltip on every marker.
 *
 * @module
 */

/** One series of a chart. */
export interface ChartSeries {
  /** Legend text. */
  name: string;
  /** `[x, y]` points in x order; non-finite ones are left out. */
  points: [number, number][];
  /** Stroke colour (default: the palette by index). */
  color?: string;
  /** Join the points with a line (default true). */
  line?: boolean;
  /** Dashed line. */
  dashed?: boolean;
  /** Line width (default 1.75). */
  width?: number;
  /** Opacity of the line (default 1). */
  opacity?: number;
  /** Markers at the points (default: when the series has ≤ 30 points). */
  markers?: boolean;
  /** A label beside each point (same order as `points`; empty: none). */
  labels?: string[];
  /** A shaded band `[x, low, high]` (e.g. mean ± sd across seeds). */
  band?: [number, number, number][];
  /** Leave it out of the legend. */
  hideInLegend?: boolean;
}

/** Options of {@linkcode chart}. */
export interface ChartOptions {
  /** Title, wrapped to the width. */
  title: string;
  /** X axis label. */
  xLabel: string;
  /** Y axis label. */
  yLabel: string;
  /** Logarithmic x axis (points with x ≤ 0 are left out). */
  logX?: boolean;
  /** Width in px (default 760). */
  width?: number;
  /** Height in px (default 440). */
  height?: number;
  /** A note under the legend (e.g. what the band is). */
  note?: string;
}

/** Where a chart's plot lies and how data maps to it (for hover code). */
export interface ChartLayout {
  /** Width and height of the whole SVG. */
  width: number;
  /** Height of the whole SVG. */
  height: number;
  /** The plot area: left, top, width, height in px. */
  plot: { left: number; top: number; width: number; height: number };
  /** X domain (data units, after padding). */
  x: [number, number];
  /** Y domain (data units, after padding). */
  y: [number, number];
  /** Whether x is logarithmic. */
  logX: boolean;
  /** Title lines. */
  titleLines: string[];
  /** Legend: where it starts, and whether it is beside (right) or below. */
  legend: {
    left: number;
    top: number;
    side: "right" | "below";
    columns: number;
  };
  /** X ticks (data units) and their labels. */
  xTicks: { value: number; label: string }[];
  /** Y ticks (data units) and their labels. */
  yTicks: { value: number; label: string }[];
}

/** The palette, colour-blind friendly (Okabe–Ito, darkened for white). */
const PALETTE: readonly string[] = [
  "#0b6fb0",
  "#d1495b",
  "#2a9d5c",
  "#e08a00",
  "#7b4fb2",
  "#8c564b",
  "#c2549d",
  "#5f6b73",
];

const FONT = 12;
const TITLE_FONT = 15;

/**
 * Approximate width of text in a sans-serif font (no DOM to measure with).
 *
 * @param text The text.
 * @param size Font size, px.
 * @returns Its width, px (generous, so nothing is clipped).
 *
 * @example
 * ```ts
 * import { textWidth } from "@d3pm/eval/chart";
 * import { assert } from "@std/assert";
 * assert(textWidth("mmmm", 12) > textWidth("iiii", 12));
 * ```
 */
export function textWidth(text: string, size: number): number {
  let w = 0;
  for (const ch of text) {
    if ("iljtf.,:;'|!() ".includes(ch)) w += 0.32;
    else if ("mwMW@%".includes(ch)) w += 0.9;
    else if (ch >= "A" && ch <= "Z") w += 0.68;
    else if (ch.charCodeAt(0) > 0x2000) w += 0.75;
    else w += 0.58;
  }
  return w * size * 1.08;
}

/**
 * Words of `text` in lines no wider than `width`.
 *
 * @param text The text.
 * @param width Px.
 * @param size Font size, px.
 * @returns The lines.
 *
 * @example
 * ```ts
 * import { wrapText } from "@d3pm/eval/chart";
 * import { assertEquals } from "@std/assert";
 * assertEquals(wrapText("a b c", 1000, 12), ["a b c"]);
 * assertEquals(wrapText("aaaa bbbb", 40, 12), ["aaaa", "bbbb"]);
 * ```
 */
export function wrapText(text: string, width: number, size: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    const next = line ? `${line} ${word}` : word;
    if (line && textWidth(next, size) > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines.length ? lines : [""];
}

/**
 * A number as a tick label: up to 4 significant digits, thousands grouped,
 * exponent form for the very large and very small.
 *
 * @param v The value.
 * @returns The label.
 *
 * @example
 * ```ts
 * import { tickLabel } from "@d3pm/eval/chart";
 * import { assertEquals } from "@std/assert";
 * assertEquals([tickLabel(2000), tickLabel(0.25), tickLabel(3e9)], ["2,000", "0.25", "3e9"]);
 * ```
 */
export function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e7 || a < 1e-3)) {
    return v.toExponential(a >= 1e7 ? 0 : 1).replace("e+", "e");
  }
  const s = String(+v.toPrecision(4));
  const [int, frac] = s.split(".");
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac ? `${grouped}.${frac}` : grouped;
}

/**
 * Nice ticks of a linear axis: steps of 1, 2 or 5 × 10^k, about `n` of them.
 *
 * @param lo Lower end.
 * @param hi Upper end.
 * @param n About how many (default 6).
 * @returns The tick values inside [lo, hi].
 *
 * @example
 * ```ts
 * import { linearTicks } from "@d3pm/eval/chart";
 * import { assertEquals } from "@std/assert";
 * assertEquals(linearTicks(0, 10, 5), [0, 2, 4, 6, 8, 10]);
 * ```
 */
export function linearTicks(lo: number, hi: number, n = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const out: number[] = [];
  for (
    let v = Math.ceil(lo / step - 1e-9) * step;
    v <= hi + 1e-9 * step;
    v += step
  ) {
    out.push(+v.toPrecision(12));
  }
  return out;
}

/**
 * Ticks of a log axis: powers of ten over wide ranges, 1-2-5 within a few
 * decades, every integer multiple within one, so there are always at least
 * two labels.
 *
 * @param lo Lower end (> 0).
 * @param hi Upper end.
 * @returns The tick values inside [lo, hi].
 *
 * @example
 * ```ts
 * import { logTicks } from "@d3pm/eval/chart";
 * import { assertEquals } from "@std/assert";
 * assertEquals(logTicks(1, 1e6), [1, 10, 100, 1000, 10000, 100000, 1000000]);
 * assertEquals(logTicks(300, 9000), [500, 1000, 2000, 5000]);
 * assertEquals(logTicks(420, 980), [500, 600, 700, 800, 900]);
 * ```
 */
export function logTicks(lo: number, hi: number): number[] {
  if (!(lo > 0) || !(hi > lo)) return [lo];
  const pick = (mults: number[]) => {
    const out: number[] = [];
    for (
      let k = Math.floor(Math.log10(lo));
      k <= Math.ceil(Math.log10(hi));
      k++
    ) {
      for (const m of mults) {
        const v = +(m * 10 ** k).toPrecision(12);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
      }
    }
    return out;
  };
  for (const mults of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const t = pick(mults);
    if (t.length >= 3 && t.length <= 9) return t;
    if (t.length > 9) {
      return mults.length === 1 ? t : pick([1]).length >= 3 ? pick([1]) : t;
    }
  }
  // Under one decade and fewer than three multiples: linear ticks.
  return linearTicks(lo, hi, 4).filter((v) => v > 0);
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

const num = (v: number) => +v.toFixed(1);

function finitePoints(s: ChartSeries, logX: boolean): [number, number][] {
  return s.points.filter(([x, y]) =>
    Number.isFinite(x) && Number.isFinite(y) && (!logX || x > 0)
  );
}

/**
 * The least and greatest of `values`, in a loop: `Math.min(...values)`
 * passes each as an argument, and a curve of 3.18 million steps (a 315 MB
 * log) overflowed the call stack.
 */
function extent(values: readonly number[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * The layout of a chart: title lines, legend place, plot box, padded
 * domains and ticks.
 *
 * @param series The series.
 * @param options Title, labels, axes, size.
 * @returns The layout.
 *
 * @example
 * ```ts
 * import { chartLayout } from "@d3pm/eval/chart";
 * import { assert } from "@std/assert";
 * const l = chartLayout([{ name: "a", points: [[0, 1], [10, 2]] }], { title: "t", xLabel: "x", yLabel: "y" });
 * assert(l.x[0] < 0 && l.x[1] > 10); // no point on the border
 * ```
 */
export function chartLayout(
  series: readonly ChartSeries[],
  options: ChartOptions,
): ChartLayout {
  const W = options.width ?? 760, H = options.height ?? 440;
  const logX = options.logX ?? false;
  const fx = (x: number) => logX ? Math.log10(x) : x;
  const xs: number[] = [], ys: number[] = [];
  for (const s of series) {
    for (const [x, y] of finitePoints(s, logX)) {
      xs.push(fx(x));
      ys.push(y);
    }
    for (const [x, lo, hi] of s.band ?? []) {
      if (!Number.isFinite(x) || (logX && x <= 0)) continue;
      if (Number.isFinite(lo)) ys.push(lo);
      if (Number.isFinite(hi)) ys.push(hi);
    }
  }
  let [x0, x1] = xs.length ? extent(xs) : [0, 1];
  let [y0, y1] = ys.length ? extent(ys) : [0, 1];
  if (x1 === x0) [x0, x1] = logX ? [x0 - 0.5, x1 + 0.5] : [x0 - 1, x1 + 1];
  if (y1 === y0) {
    [y0, y1] = [
      y0 - Math.max(1, Math.abs(y0) * 0.1),
      y1 + Math.max(1, Math.abs(y1) * 0.1),
    ];
  }
  const px = (x1 - x0) * 0.04, py = (y1 - y0) * 0.06;
  x0 -= px;
  x1 += px;
  y0 -= py;
  y1 += py;

  const titleLines = wrapText(options.title, W - 24, TITLE_FONT);
  const top = 14 + titleLines.length * 19 + 8;
  const legendItems = series.filter((s) => !s.hideInLegend);
  const longest = Math.max(
    0,
    ...legendItems.map((s) => textWidth(s.name, FONT)),
    ...(options.note ? [Math.min(textWidth(options.note, 11), 200)] : []),
  );
  const legendW = Math.min(300, longest + 34);
  const xTicksRaw = logX ? logTicks(10 ** x0, 10 ** x1) : linearTicks(x0, x1);
  const yTicksRaw = linearTicks(y0, y1);
  const yLabels = yTicksRaw.map(tickLabel);
  const left = 26 + Math.max(...yLabels.map((l) => textWidth(l, FONT))) + 12;
  let side: "right" | "below" = "right";
  let right = W - 12 - (legendItems.length ? legendW + 14 : 0);
  let bottom = H - 48;
  let columns = 1;
  if (legendItems.length && right - left < W * 0.55) {
    // Too wide to sit beside: below the plot, in columns.
    side = "below";
    right = W - 16;
    columns = Math.max(1, Math.floor((W - left) / legendW));
    const rows = Math.ceil(legendItems.length / columns);
    bottom = H - 48 - rows * 17 - 8;
  }
  return {
    width: W,
    height: H,
    plot: { left, top, width: right - left, height: bottom - top },
    x: logX ? [10 ** x0, 10 ** x1] : [x0, x1],
    y: [y0, y1],
    logX,
    titleLines,
    legend: side === "right"
      ? { left: right + 14, top: top + 4, side, columns }
      : { left, top: bottom + 40, side, columns },
    xTicks: xTicksRaw.map((value) => ({ value, label: tickLabel(value) })),
    yTicks: yTicksRaw.map((value, i) => ({ value, label: yLabels[i] })),
  };
}

/**
 * The pixel position of a data point in a layout.
 *
 * @param layout The chart's layout.
 * @param x Data x.
 * @param y Data y.
 * @returns Pixels `[px, py]`.
 *
 * @example
 * ```ts
 * import { chartLayout, toPixel } from "@d3pm/eval/chart";
 * import { assert } from "@std/assert";
 * const l = chartLayout([{ name: "a", points: [[0, 0], [1, 1]] }], { title: "t", xLabel: "x", yLabel: "y" });
 * const [px, py] = toPixel(l, 0, 0);
 * assert(px > l.plot.left && py < l.plot.top + l.plot.height);
 * ```
 */
export function toPixel(
  layout: ChartLayout,
  x: number,
  y: number,
): [number, number] {
  const { plot, logX } = layout;
  const f = (v: number) => logX ? Math.log10(v) : v;
  const [a, b] = layout.x.map(f);
  return [
    plot.left + ((f(x) - a) / (b - a)) * plot.width,
    plot.top + plot.height -
    ((y - layout.y[0]) / (layout.y[1] - layout.y[0])) * plot.height,
  ];
}

/**
 * The data x at a pixel column of a layout (for hover code).
 *
 * @param layout The chart's layout.
 * @param px Pixel x.
 * @returns Data x.
 *
 * @example
 * ```ts
 * import { chartLayout, fromPixelX, toPixel } from "@d3pm/eval/chart";
 * import { assertAlmostEquals } from "@std/assert";
 * const l = chartLayout([{ name: "a", points: [[1, 0], [100, 1]] }], { title: "t", xLabel: "x", yLabel: "y", logX: true });
 * assertAlmostEquals(fromPixelX(l, toPixel(l, 10, 0)[0]), 10, 1e-9);
 * ```
 */
export function fromPixelX(layout: ChartLayout, px: number): number {
  const { plot, logX } = layout;
  const f = (v: number) => logX ? Math.log10(v) : v;
  const [a, b] = layout.x.map(f);
  const v = a + ((px - plot.left) / plot.width) * (b - a);
  return logX ? 10 ** v : v;
}

/**
 * A chart as an SVG document: title, axes with ticks and labels, the
 * series (bands, lines, markers with tooltips, point labels) clipped to the
 * plot, and the legend beside or below the plot.
 *
 * @param series The series.
 * @param options Title, labels, axes, size.
 * @returns The SVG text.
 *
 * @example
 * ```ts
 * import { chart } from "@d3pm/eval/chart";
 * import { assert } from "@std/assert";
 * const svg = chart([
 *   { name: "AR", points: [[8000, 21]], labels: ["AR"] },
 *   { name: "D3PM", points: [[500, 64], [1100, 41]], labels: ["16 steps", "4 steps"] },
 * ], { title: "speed vs quality", xLabel: "tokens/s", yLabel: "gen PPL", logX: true });
 * assert(svg.includes(">16 steps<") && svg.includes("<title>D3PM"));
 * ```
 */
export function chart(
  series: readonly ChartSeries[],
  options: ChartOptions,
): string {
  const l = chartLayout(series, options);
  const { plot } = l;
  const bottom = plot.top + plot.height, right = plot.left + plot.width;
  const clipId = `plot-${Math.abs(hash(options.title)).toString(36)}`;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${l.width}" height="${l.height}" viewBox="0 0 ${l.width} ${l.height}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif" font-size="${FONT}" data-chart='${
      esc(JSON.stringify({ plot: l.plot, x: l.x, y: l.y, logX: l.logX }))
    }'>`,
    `<rect width="${l.width}" height="${l.height}" fill="white"/>`,
    `<defs><clipPath id="${clipId}"><rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}"/></clipPath></defs>`,
  ];
  l.titleLines.forEach((line, i) =>
    out.push(
      `<text x="${l.width / 2}" y="${
        22 + i * 19
      }" text-anchor="middle" font-size="${TITLE_FONT}" font-weight="600">${
        esc(line)
      }</text>`,
    )
  );
  for (const t of l.yTicks) {
    const [, y] = toPixel(l, l.x[0], t.value);
    if (y < plot.top - 0.5 || y > bottom + 0.5) continue;
    out.push(
      `<line x1="${plot.left}" y1="${num(y)}" x2="${right}" y2="${
        num(y)
      }" stroke="#e6e6e6"/>`,
      `<text x="${plot.left - 7}" y="${
        num(y + 4)
      }" text-anchor="end" fill="#333">${esc(t.label)}</text>`,
    );
  }
  for (const t of l.xTicks) {
    const [x] = toPixel(l, t.value, l.y[0]);
    if (x < plot.left - 0.5 || x > right + 0.5) continue;
    out.push(
      `<line x1="${num(x)}" y1="${plot.top}" x2="${
        num(x)
      }" y2="${bottom}" stroke="#f0f0f0"/>`,
      `<line x1="${num(x)}" y1="${bottom}" x2="${num(x)}" y2="${
        bottom + 5
      }" stroke="#333"/>`,
      `<text x="${num(x)}" y="${
        bottom + 18
      }" text-anchor="middle" fill="#333">${esc(t.label)}</text>`,
    );
  }
  out.push(
    `<rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}" fill="none" stroke="#999"/>`,
    `<text x="${plot.left + plot.width / 2}" y="${
      bottom + 38
    }" text-anchor="middle">${esc(options.xLabel)}</text>`,
    `<text x="14" y="${
      plot.top + plot.height / 2
    }" text-anchor="middle" transform="rotate(-90 14 ${
      plot.top + plot.height / 2
    })">${esc(options.yLabel)}</text>`,
    `<g clip-path="url(#${clipId})">`,
  );
  const colorOf = (s: ChartSeries, i: number) =>
    s.color ?? PALETTE[i % PALETTE.length];
  series.forEach((s, i) => {
    const color = colorOf(s, i);
    const band = (s.band ?? []).filter(([x, lo, hi]) =>
      Number.isFinite(x) && Number.isFinite(lo) && Number.isFinite(hi) &&
      (!l.logX || x > 0)
    );
    if (band.length > 1) {
      const upper = band.map(([x, , hi]) => toPixel(l, x, hi));
      const lower = band.map(([x, lo]) => toPixel(l, x, lo)).reverse();
      out.push(
        `<polygon data-band="${i}" fill="${color}" fill-opacity="0.16" stroke="none" points="${
          [...upper, ...lower].map(([x, y]) => `${num(x)},${num(y)}`).join(" ")
        }"/>`,
      );
    }
  });
  series.forEach((s, i) => {
    const color = colorOf(s, i);
    const p = finitePoints(s, l.logX);
    out.push(`<g data-series="${i}">`);
    if (p.length > 1 && s.line !== false) {
      out.push(
        `<polyline fill="none" stroke="${color}" stroke-width="${
          s.width ?? 1.75
        }"${s.dashed ? ' stroke-dasharray="6 4"' : ""}${
          s.opacity !== undefined ? ` stroke-opacity="${s.opacity}"` : ""
        } stroke-linejoin="round" points="${
          p.map(([x, y]) => toPixel(l, x, y).map(num).join(",")).join(" ")
        }"/>`,
      );
    }
    if (s.markers ?? p.length <= 30) {
      for (const [x, y] of p) {
        const [cx, cy] = toPixel(l, x, y);
        out.push(
          `<circle cx="${num(cx)}" cy="${
            num(cy)
          }" r="3.5" fill="${color}" stroke="white" stroke-width="1"><title>${
            esc(
              `${s.name}: ${options.xLabel} ${
                tickLabel(x)
              }, ${options.yLabel} ${tickLabel(y)}`,
            )
          }</title></circle>`,
        );
      }
    }
    out.push("</g>");
  });
  out.push("</g>");
  // Point labels above everything, kept inside the plot.
  series.forEach((s, i) => {
    const labels = s.labels ?? [];
    s.points.forEach(([x, y], k) => {
      const text = labels[k];
      if (
        !text || !Number.isFinite(x) || !Number.isFinite(y) ||
        (l.logX && x <= 0)
      ) return;
      const [cx, cy] = toPixel(l, x, y);
      const w = textWidth(text, 11);
      const leftSide = cx + 7 + w > right - 2;
      const ty = Math.max(plot.top + 12, Math.min(bottom - 4, cy - 7));
      out.push(
        `<text x="${num(leftSide ? cx - 7 : cx + 7)}" y="${
          num(ty)
        }" text-anchor="${leftSide ? "end" : "start"}" font-size="11" fill="${
          colorOf(s, i)
        }" stroke="white" stroke-width="3" paint-order="stroke">${
          esc(text)
        }</text>`,
      );
    });
  });
  const items = series.map((s, i) => ({ s, i })).filter(({ s }) =>
    !s.hideInLegend
  );
  const colW = l.legend.side === "below"
    ? (l.width - l.legend.left) / l.legend.columns
    : 0;
  items.forEach(({ s, i }, k) => {
    const col = k % l.legend.columns, row = Math.floor(k / l.legend.columns);
    const x = l.legend.left + col * colW, y = l.legend.top + row * 17 + 6;
    const color = colorOf(s, i);
    out.push(
      `<g data-legend="${i}"><line x1="${num(x)}" y1="${y}" x2="${
        num(x + 20)
      }" y2="${y}" stroke="${color}" stroke-width="${
        Math.max(2, s.width ?? 1.75)
      }"${s.dashed ? ' stroke-dasharray="6 4"' : ""}${
        s.line === false ? ' stroke-opacity="0"' : ""
      }/>${
        s.markers || s.line === false
          ? `<circle cx="${num(x + 10)}" cy="${y}" r="3.5" fill="${color}"/>`
          : ""
      }${
        s.band
          ? `<rect x="${num(x)}" y="${
            y - 5
          }" width="20" height="10" fill="${color}" fill-opacity="0.16"/>`
          : ""
      }<text x="${num(x + 26)}" y="${y + 4}">${esc(s.name)}</text></g>`,
    );
  });
  if (options.note && items.length) {
    const rows = Math.ceil(items.length / l.legend.columns);
    wrapText(options.note, 200, 11).forEach((line, k) =>
      out.push(
        `<text x="${l.legend.left}" y="${
          l.legend.top + rows * 17 + 14 + k * 14
        }" font-size="11" fill="#555">${esc(line)}</text>`,
      )
    );
  }
  out.push("</svg>");
  return out.join("\n") + "\n";
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h;
}
