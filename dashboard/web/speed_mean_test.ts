// The run page's speed–quality mean across seeds: each setting's mean speed
// and gen PPL with a ± sample-sd band, only for contestants of several seeds.
import { assertAlmostEquals, assertEquals } from "@std/assert";
import { speedMeanSeries, withSpeedMeans } from "./speed_mean.ts";

const labels = {
  label: (k: string) => (k === "ar" ? "AR" : "D3PM"),
  validation: () => "NLL",
};
const d3pm = (seed: number, curve: [number, number, number][]) =>
  ({
    model: "d3pm",
    seed,
    generation: { speed: { tokensPerSecond: 1 }, genPpl: 1, entropy: 4 },
    curve: curve.map(([steps, tokensPerSecond, genPpl]) => ({
      steps,
      speed: { tokensPerSecond },
      genPpl,
    })),
  }) as never;
const ar = (seed: number, tokensPerSecond: number, genPpl: number) =>
  ({
    model: "ar",
    seed,
    generation: { speed: { tokensPerSecond }, genPpl, entropy: 4 },
  }) as never;

Deno.test("speedMeanSeries() averages each step count over the seeds, with a ± sample-sd band of the gen PPL, and skips a contestant of one seed", () => {
  const series = speedMeanSeries([
    ar(0, 900, 20),
    d3pm(0, [[16, 400, 60], [4, 1600, 90]]),
    d3pm(1, [[4, 1400, 96], [16, 600, 66]]), // another order
    d3pm(2, [[16, 500, 63], [4, 1500, 93], [8, 800, 70]]), // 8: this seed only
  ], labels);
  assertEquals(series.length, 1);
  const [s] = series;
  assertEquals(s.name, "D3PM, mean ± sd over 3 seeds");
  assertEquals(s.labels, ["16 steps", "4 steps"]);
  assertEquals(s.points, [[500, 63], [1500, 93]]);
  // Sample sd (n − 1) of 60, 66, 63 and of 90, 96, 93: 3.
  for (const [i, [x, m]] of [[500, 63], [1500, 93]].entries()) {
    const [bx, lo, hi] = s.band![i];
    assertEquals(bx, x);
    assertAlmostEquals(lo, m - 3, 1e-12);
    assertAlmostEquals(hi, m + 3, 1e-12);
  }
  assertEquals(speedMeanSeries([ar(0, 900, 20)], labels), []);
});

Deno.test("withSpeedMeans() makes faint only the seeds of a contestant with a mean, and draws the means last", () => {
  const seed = (name: string, color: string) => ({
    name,
    points: [[1, 2]] as [number, number][],
    labels: ["4 steps"],
    color,
  });
  const drawn = withSpeedMeans(
    [
      seed("AR", "red"),
      seed("D3PM, seed 0", "blue"),
      seed("D3PM, seed 1", "blue"),
    ],
    [{ name: "D3PM, mean ± sd over 2 seeds", points: [[1, 2]], color: "blue" }],
  );
  assertEquals(
    drawn.map((s) => [s.name, s.opacity, s.labels]),
    [
      ["AR", undefined, ["4 steps"]],
      ["D3PM, seed 0", 0.3, []],
      ["D3PM, seed 1", 0.3, []],
      ["D3PM, mean ± sd over 2 seeds", undefined, undefined],
    ],
  );
});
