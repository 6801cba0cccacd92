/// <reference lib="dom" />
// An interactive chart: the report's SVG (the same chart() code), with a
// hover read-out of the nearest values and legend entries that hide series.
import {
  chart,
  chartLayout,
  type ChartOptions,
  type ChartSeries,
  fromPixelX,
  tickLabel,
  toPixel,
} from "@d3pm/eval/chart";
import { h } from "./dom.ts";

/** How hover picks points: the same x across series (curves), or the nearest point (scatter). */
export type HoverMode = "x" | "nearest";

/** A chart in the page that can be redrawn with new series. */
export class ChartView {
  readonly element: HTMLDivElement;
  #tip: HTMLDivElement;
  #svgHolder: HTMLDivElement;
  #series: ChartSeries[] = [];
  #options!: ChartOptions;
  #hidden = new Set<string>();
  #mode: HoverMode;

  constructor(mode: HoverMode = "x") {
    this.#mode = mode;
    this.#svgHolder = h("div", { class: "chart-svg" });
    this.#tip = h("div", { class: "chart-tip", hidden: true });
    this.element = h("div", { class: "chart" }, this.#svgHolder, this.#tip);
    this.#svgHolder.addEventListener("mousemove", (e) => this.#hover(e));
    this.#svgHolder.addEventListener("mouseleave", () => this.#clearHover());
    this.#svgHolder.addEventListener("click", (e) => {
      const g = (e.target as Element).closest("[data-legend]");
      if (!g) return;
      const s = this.#visible()[Number(g.getAttribute("data-legend"))];
      if (!s) return;
      if (this.#hidden.has(s.name)) this.#hidden.delete(s.name);
      else this.#hidden.add(s.name);
      this.#draw();
    });
  }

  /** Draw these series (keeping which ones the user hid). */
  update(series: ChartSeries[], options: ChartOptions): void {
    this.#series = series;
    this.#options = options;
    this.#draw();
  }

  #visible(): ChartSeries[] {
    // Hidden series keep their legend entry, greyed, so they can come back.
    return this.#series.map((s) =>
      this.#hidden.has(s.name)
        ? {
          ...s,
          points: [],
          band: undefined,
          labels: undefined,
          color: "#bbb",
        }
        : s
    );
  }

  #draw(): void {
    this.#svgHolder.innerHTML = chart(this.#visible(), { ...this.#options });
    const svg = this.#svgHolder.querySelector("svg")!;
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.style.width = "100%";
    svg.style.height = "auto";
    svg.style.maxWidth = `${this.#options.width ?? 760}px`;
    for (const g of svg.querySelectorAll("[data-legend]")) {
      (g as SVGGElement).style.cursor = "pointer";
    }
  }

  #clearHover(): void {
    this.#tip.hidden = true;
    this.#svgHolder.querySelector(".hover-rule")?.remove();
    this.#svgHolder.querySelectorAll(".hover-dot").forEach((d) => d.remove());
  }

  #hover(e: MouseEvent): void {
    const svg = this.#svgHolder.querySelector("svg");
    if (!svg) return;
    const series = this.#visible();
    const layout = chartLayout(series, this.#options);
    const box = svg.getBoundingClientRect();
    const scale = layout.width / box.width;
    const px = (e.clientX - box.left) * scale,
      py = (e.clientY - box.top) * scale;
    const { plot } = layout;
    this.#clearHover();
    if (
      px < plot.left || px > plot.left + plot.width || py < plot.top ||
      py > plot.top + plot.height
    ) return;
    const rows: {
      name: string;
      color: string;
      x: number;
      y: number;
      d: number;
    }[] = [];
    series.forEach((s, i) => {
      if (!s.points.length) return;
      let best: [number, number] | undefined, bestD = Infinity;
      if (this.#mode === "x") {
        const x = fromPixelX(layout, px);
        for (const p of s.points) {
          const d = Math.abs(p[0] - x);
          if (d < bestD) [best, bestD] = [p, d];
        }
        if (best) bestD = Math.abs(toPixel(layout, best[0], best[1])[0] - px);
      } else {
        for (const p of s.points) {
          const [qx, qy] = toPixel(layout, p[0], p[1]);
          const d = Math.hypot(qx - px, qy - py);
          if (d < bestD) [best, bestD] = [p, d];
        }
      }
      if (best && bestD < 40) {
        rows.push({
          name: s.name,
          color: s.color ?? "#333",
          x: best[0],
          y: best[1],
          d: bestD,
        });
      }
      void i;
    });
    if (!rows.length) return;
    const shown = this.#mode === "nearest"
      ? [rows.sort((a, b) => a.d - b.d)[0]]
      : rows;
    const NS = "http://www.w3.org/2000/svg";
    if (this.#mode === "x") {
      const [rx] = toPixel(layout, shown[0].x, 0);
      const rule = document.createElementNS(NS, "line");
      rule.setAttribute("class", "hover-rule");
      for (
        const [k, v] of [["x1", rx], ["x2", rx], ["y1", plot.top], [
          "y2",
          plot.top + plot.height,
        ]]
      ) {
        rule.setAttribute(k as string, String(v));
      }
      rule.setAttribute("stroke", "#888");
      rule.setAttribute("stroke-dasharray", "3 3");
      svg.appendChild(rule);
    }
    for (const r of shown) {
      const [cx, cy] = toPixel(layout, r.x, r.y);
      const dot = document.createElementNS(NS, "circle");
      dot.setAttribute("class", "hover-dot");
      dot.setAttribute("cx", String(cx));
      dot.setAttribute("cy", String(cy));
      dot.setAttribute("r", "4.5");
      dot.setAttribute("fill", "none");
      dot.setAttribute("stroke", r.color);
      dot.setAttribute("stroke-width", "2");
      svg.appendChild(dot);
    }
    this.#tip.replaceChildren(
      h(
        "div",
        { class: "tip-x" },
        `${this.#options.xLabel}: ${tickLabel(shown[0].x)}`,
      ),
      ...shown.map((r) =>
        h(
          "div",
          {},
          h("span", { class: "swatch", style: { background: r.color } }),
          ` ${r.name}: `,
          h("b", {}, tickLabel(r.y)),
          this.#mode === "nearest" ? ` at ${tickLabel(r.x)}` : "",
        )
      ),
    );
    this.#tip.hidden = false;
    const holder = this.#svgHolder.getBoundingClientRect();
    const left = e.clientX - holder.left + 14;
    this.#tip.style.left = `${Math.min(left, holder.width - 260)}px`;
    this.#tip.style.top = `${e.clientY - holder.top + 12}px`;
  }
}
