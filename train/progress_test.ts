import { assertEquals } from "@std/assert";
import { Progress } from "./progress.ts";

/** The plain lines of a Progress whose clock reads `seconds` at each update. */
function lines(seconds: number[], total: number): string[] {
  const now = performance.now;
  let ms = 0;
  performance.now = () => ms;
  try {
    const out: string[] = [];
    const p = new Progress({
      label: "train",
      total,
      write: (s) => out.push(s),
      interactive: false,
    });
    seconds.forEach((s, i) => {
      ms = s * 1000;
      p.update(i + 1);
    });
    return out;
  } finally {
    performance.now = now;
  }
}

Deno.test("Progress rounds elapsed and ETA before splitting minutes: 119.6 s is 2m00s, 59.6 s is 1m00s, never 1m60s or 60s", () => {
  assertEquals(lines([119.6], 2), ["train 1/2  elapsed 2m00s  ETA 2m00s\n"]);
  assertEquals(lines([59.6], 2), ["train 1/2  elapsed 1m00s  ETA 1m00s\n"]);
  assertEquals(lines([59.4, 89.4], 2), [
    "train 1/2  elapsed 59s  ETA 59s\n",
    "train 2/2  elapsed 1m29s  ETA 0s\n",
  ]);
  assertEquals(lines([3725.2], 2), ["train 1/2  elapsed 62m05s  ETA 62m05s\n"]);
});
