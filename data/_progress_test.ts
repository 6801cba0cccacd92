import { assertEquals } from "@std/assert";
import { defaultProgress } from "./_progress.ts";

Deno.test("defaultProgress() speaks every 10 s for a small file still being read after 10 s, every 10% for one of 32 MiB or more", () => {
  let now = 0;
  const lines: string[] = [];
  const options = { seconds: () => now, print: (l: string) => lines.push(l) };
  // A 4.5 MiB .gz that expands to a gigabyte: its stored bytes come slowly.
  const small = defaultProgress("reading test.txt.gz", options);
  const size = 4.5 * 2 ** 20;
  for (
    const [s, f] of [[2, 0.01], [9.9, 0.1], [10, 0.11], [15, 0.2], [31, 0.5]]
  ) {
    now = s;
    small({ bytes: f * size, totalBytes: size });
  }
  assertEquals(lines, [
    "reading test.txt.gz: 11% of 4.5 MiB read after 10 s (a .gz can expand far beyond its size)",
    "reading test.txt.gz: 50% of 4.5 MiB read after 31 s (a .gz can expand far beyond its size)",
  ]);
  // A plain file read slowly (its reader is slow): no word of expanding.
  lines.length = 0;
  now = 12;
  defaultProgress("reading test.txt", options)({
    bytes: 2 ** 20,
    totalBytes: 2 * 2 ** 20,
  });
  assertEquals(lines, ["reading test.txt: 50% of 2.0 MiB read after 12 s"]);
  // A small file read within 10 s says nothing; a large one, every 10%.
  lines.length = 0;
  now = 9.9;
  defaultProgress("reading valid.txt", options)({
    bytes: size,
    totalBytes: size,
  });
  now = 1;
  const big = defaultProgress("reading train.txt", options);
  const total = 100 * 2 ** 20;
  for (const f of [0.05, 0.1, 0.15, 0.35, 1]) {
    big({ bytes: f * total, totalBytes: total });
  }
  assertEquals(lines, [
    "reading train.txt: 10% (10 MiB, 10 MiB/s)",
    "reading train.txt: 35% (35 MiB, 35 MiB/s)",
    "reading train.txt: 100% (100 MiB, 100 MiB/s)",
  ]);
});

Deno.test("defaultProgress() switches to 10% steps at exactly 32 MiB, speaks at 10, 20 and 30 s, and counts by default from the call", () => {
  let now = 0;
  const lines: string[] = [];
  const options = { seconds: () => now, print: (l: string) => lines.push(l) };
  // 32 MiB: large (every 10%, at once); one byte less: small (every 10 s).
  const at = (total: number, s: number, f: number) => {
    const report = defaultProgress("r", options);
    now = s;
    report({ bytes: f * total, totalBytes: total });
  };
  at(32 * 2 ** 20, 1, 0.1);
  at(32 * 2 ** 20 - 1, 1, 0.1);
  at(16 * 2 ** 20, 1, 0.1);
  assertEquals(lines, ["r: 10% (3 MiB, 3 MiB/s)"]);
  // The next line comes at the next multiple of 10% passed: 40%, not 45%.
  lines.length = 0;
  const steps = defaultProgress("u", options);
  for (const f of [0.35, 0.42]) {
    steps({ bytes: f * 2 ** 30, totalBytes: 2 ** 30 });
  }
  assertEquals(lines.map((l) => l.split(" ")[1]), ["35%", "42%"]);
  lines.length = 0;
  const small = defaultProgress("s", options);
  for (const s of [10, 19.4, 20, 29.4, 30]) {
    now = s;
    small({ bytes: 1, totalBytes: 2 });
  }
  assertEquals(lines.map((l) => l.split(" after ")[1].split(" ")[0]), [
    "10",
    "20",
    "30",
  ]);
  // The default clock counts seconds from the call, not from the process's
  // start: performance.now() stubbed at 1,000 s, then 9.995 s and 10 s on.
  lines.length = 0;
  let ms = 1e6;
  const real = Object.getOwnPropertyDescriptor(performance, "now");
  Object.defineProperty(performance, "now", {
    value: () => ms,
    configurable: true,
  });
  try {
    const clocked = defaultProgress("t", { print: (l) => lines.push(l) });
    for (const dt of [0, 9995, 10000]) {
      ms = 1e6 + dt;
      clocked({ bytes: dt === 10000 ? 2 : 1, totalBytes: 4 });
    }
  } finally {
    if (real) Object.defineProperty(performance, "now", real);
    else delete (performance as { now?: unknown }).now;
  }
  assertEquals(lines, [
    "t: 50% of 0.0 MiB read after 10 s",
  ]);
});
