import { assert, assertEquals } from "@std/assert";
import { chart, chartLayout, logTicks, textWidth, toPixel } from "./chart.ts";

const LONG =
  "Training loss and validation (AR: NLL; D3PM: bound; MLM: bound), nats per token, over every seed of the run";

Deno.test("chart() wraps a long title within the width instead of clipping it", () => {
  const layout = chartLayout([{ name: "a", points: [[0, 1], [1, 2]] }], {
    title: LONG,
    xLabel: "x",
    yLabel: "y",
    width: 640,
  });
  assert(layout.titleLines.length >= 2);
  for (const line of layout.titleLines) {
    assert(textWidth(line, 15) <= 640 - 24, line);
  }
  const svg = chart([{ name: "a", points: [[0, 1], [1, 2]] }], {
    title: LONG,
    xLabel: "x",
    yLabel: "y",
    width: 640,
  });
  assertEquals(
    svg.match(/font-weight="600"/g)!.length,
    layout.titleLines.length,
  );
});

Deno.test("chart() puts the legend beside the plot, never over it, and keeps points off the border", () => {
  const series = [
    "AR train",
    "AR valid (NLL)",
    "D3PM train",
    "D3PM valid (bound)",
  ].map((name, k) => ({
    name,
    points: Array.from(
      { length: 50 },
      (_, i) => [i * 20, 8 - k * 0.3 - i * 0.02] as [number, number],
    ),
  }));
  const options = { title: "loss", xLabel: "step", yLabel: "nats" };
  const l = chartLayout(series, options);
  const svg = chart(series, options);
  const right = l.plot.left + l.plot.width;
  for (const m of svg.matchAll(/<g data-legend="\d+"><line x1="([\d.]+)"/g)) {
    assert(Number(m[1]) > right, m[0]);
  }
  for (const s of series) {
    for (const [x, y] of s.points) {
      const [px, py] = toPixel(l, x, y);
      assert(
        px > l.plot.left + 4 && px < right - 4 && py > l.plot.top + 4 &&
          py < l.plot.top + l.plot.height - 4,
      );
    }
  }
});

Deno.test("logTicks() labels a log axis more than once, however narrow the range", () => {
  for (const [lo, hi] of [[420, 980], [300, 9000], [950, 1050], [0.5, 2e6]]) {
    assert(logTicks(lo, hi).length >= 2, `${lo}..${hi}: ${logTicks(lo, hi)}`);
  }
  const svg = chart([{ name: "AR", points: [[8900, 21]], labels: ["AR"] }, {
    name: "D3PM",
    points: [[480, 64], [1100, 41]],
    labels: ["16 steps", "4 steps"],
  }], { title: "speed", xLabel: "tokens/s", yLabel: "gen PPL", logX: true });
  const xLabels = [
    ...svg.matchAll(/text-anchor="middle" fill="#333">([^<]+)</g),
  ].map((m) => m[1]);
  assert(xLabels.length >= 3, `x tick labels: ${xLabels}`);
  assert(
    svg.includes(">16 steps<") && svg.includes(">4 steps<") &&
      svg.includes(">AR<"),
  );
});
