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
