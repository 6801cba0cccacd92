import { assert, assertEquals } from "@std/assert";
import { type Followed, followLines, tailCheck } from "./follow_lines.ts";

/** Every item of a `once` read. */
async function readOnce(
  path: string,
  options: Parameters<typeof followLines>[1] = {},
): Promise<Followed[]> {
  const got: Followed[] = [];
  for await (const f of followLines(path, { ...options, once: true })) {
    got.push(f);
  }
  return got;
}

// Plants (each fails this test): `from` not floored down
// (`Math.floor` → `Math.ceil`), or taken as 0 (`Math.max` → `Math.min`).
Deno.test("followLines() starts at `from`, floored to a byte, numbering the lines after it from 1, and at 0 for a negative one", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, '{"a":1}\n{"b":2}\n');
    const b = { line: '{"b":2}', end: 16 };
    assertEquals(await readOnce(path, { from: 8 }), [{ ...b, number: 1 }]);
    // From byte 7, the newline of line 1: a blank line, counted.
    assertEquals(await readOnce(path, { from: 7.9 }), [{ ...b, number: 2 }]);
    assertEquals(await readOnce(path, { from: -3 }), [
      { line: '{"a":1}', end: 8, number: 1 },
      { ...b, number: 2 },
    ]);
  } finally {
    await Deno.remove(path);
  }
});

// Plants (each fails this test): the default `maxLine` 1 MiB moved
// (`1 << 20` → `2 << 20`, `1 << 21`, `1 << 19`), a line's bytes counted
// from 1, the first (`pendingBytes = 0` → `1`) or one after another.
Deno.test("followLines() keeps a line of exactly maxLine bytes (1 MiB by default), first or not, and skips one a byte longer by its number and end", async () => {
  const path = await Deno.makeTempFile();
  const mib = 1 << 20;
  try {
    const x = "x".repeat(mib);
    await Deno.writeTextFile(path, `${x}\n${x}y\nz\n`);
    assertEquals(await readOnce(path), [
      { line: x, end: mib + 1, number: 1 },
      { skipped: 2, end: 2 * mib + 3 },
      { line: "z", end: 2 * mib + 5, number: 3 },
    ]);
    await Deno.writeTextFile(path, "abcd\nabcde\nab\nabcd\n");
    assertEquals(await readOnce(path, { maxLine: 4 }), [
      { line: "abcd", end: 5, number: 1 },
      { skipped: 2, end: 11 },
      { line: "ab", end: 14, number: 3 },
      { line: "abcd", end: 19, number: 4 },
    ]);
  } finally {
    await Deno.remove(path);
  }
});

// Plants (each fails this test): after a reset, the file read from byte 1
// (`offset = 0` → `1`), lines numbered from 2 (`number = 0` → `1`), or a
// first line of exactly maxLine skipped (`pendingBytes = 0` → `1`).
Deno.test("followLines() yields a reset when the file shrinks, then reads it from its start again, numbering from 1", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/m.jsonl`;
  const stop = new AbortController();
  try {
    await Deno.writeTextFile(path, "aaaa\nbb");
    const it = followLines(path, {
      pollMs: 5,
      maxLine: 4,
      signal: stop.signal,
    });
    assertEquals((await it.next()).value, { line: "aaaa", end: 5, number: 1 });
    // Rewritten shorter than what was read: the torn "bb" is gone too.
    await Deno.writeTextFile(path, "cccc\n");
    assertEquals((await it.next()).value, { reset: true });
    assertEquals((await it.next()).value, { line: "cccc", end: 5, number: 1 });
    stop.abort();
    assertEquals((await it.next()).done, true);
  } finally {
    stop.abort();
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: the poll interval's default moved (250 → 249, 251 ms).
Deno.test("followLines() checks a missing file every 250 ms by default, and pollMs when given", async () => {
  const dir = await Deno.makeTempDir();
  const real = globalThis.setTimeout;
  const waits: (number | undefined)[] = [];
  try {
    for (const pollMs of [undefined, 40]) {
      const stop = new AbortController();
      // Every wait of the generator is one setTimeout; the first ends it.
      globalThis.setTimeout = ((f: () => void, ms?: number) => {
        waits.push(ms);
        stop.abort();
        return real(f, 0);
      }) as typeof setTimeout;
      const got = [];
      const options = { signal: stop.signal, pollMs };
      for await (const f of followLines(`${dir}/missing`, options)) {
        got.push(f);
      }
      globalThis.setTimeout = real;
      assertEquals(got, []);
    }
    assertEquals(waits, [250, 40]);
  } finally {
    globalThis.setTimeout = real;
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: the next newline looked for a byte late (`i + 1` → `i + 2`: a
// blank line's newline missed, and the next line read with it).
Deno.test("followLines() counts blank lines, one after another, without yielding them", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "a\n\n\nb\n \nc\n");
    assertEquals(await readOnce(path), [
      { line: "a", end: 2, number: 1 },
      { line: "b", end: 6, number: 4 },
      { line: "c", end: 10, number: 6 },
    ]);
  } finally {
    await Deno.remove(path);
  }
});

/**
 * Follow `path`, appending each of `parts` once the generator has read what
 * was there (each part under one 4 MiB read but the last), until `want`
 * items came (or 10 s passed).
 */
async function followAppends(
  path: string,
  parts: string[],
  maxLine: number,
  want: number,
): Promise<Followed[]> {
  const stop = new AbortController();
  const got: Followed[] = [];
  await Deno.writeTextFile(path, "");
  // Each part is written after a poll found the file unchanged: stat is
  // stubbed to count the polls.
  const stat = Deno.stat;
  let polls = 0;
  Deno.stat = (p: string | URL) => {
    if (String(p) === path) polls++;
    return stat(p);
  };
  try {
    const it = followLines(path, { pollMs: 1, maxLine, signal: stop.signal });
    const reading = (async () => {
      for (let r = await it.next(); !r.done; r = await it.next()) {
        got.push(r.value);
      }
    })();
    for (const part of parts) {
      const seen = polls;
      while (polls < seen + 2) await new Promise((r) => setTimeout(r, 1));
      await Deno.writeTextFile(path, part, { append: true });
    }
    const until = Date.now() + 10_000;
    while (got.length < want && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 1));
    }
    stop.abort();
    await reading;
  } finally {
    Deno.stat = stat;
    stop.abort();
  }
  return got;
}

// Plants (each fails this test): a torn line's parts not summed against
// maxLine (`pendingBytes + …` → `-`, in the check at its newline or in
// the sum kept), a torn line always skipped (`!skipping` → `skipping`),
// a torn part of exactly maxLine skipped (`<=` → `<`), a line already
// over maxLine read from where it was cut (`!skipping && …` → `||`).
Deno.test("followLines() joins a line torn across reads, and skips it by its number when its parts together pass maxLine", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/m.jsonl`;
  try {
    assertEquals(await followAppends(path, ["ab", "c\n", "abcd", "\n"], 4, 2), [
      { line: "abc", end: 4, number: 1 },
      { line: "abcd", end: 9, number: 2 },
    ]);
    assertEquals(await followAppends(path, ["abc", "de\n", "xy\n"], 4, 2), [
      { skipped: 1, end: 6 },
      { line: "xy", end: 9, number: 2 },
    ]);
    assertEquals(await followAppends(path, ["abcdef", "gh\n", "xy\n"], 4, 2), [
      { skipped: 1, end: 9 },
      { line: "xy", end: 12, number: 2 },
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plants (each fails this test): the folder never checked (line 139's
// `size === undefined` → `!==`, `folder !== undefined` → `===`), a folder
// that is there taken as gone (`!` dropped), a missing one as there
// (isFolder's `!` dropped).
Deno.test("followLines() waits for a missing file while its folder is there, and ends with gone once the folder is removed", async () => {
  const dir = await Deno.makeTempDir();
  const folder = `${dir}/run`;
  const path = `${folder}/m.jsonl`;
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), 10_000);
  try {
    await Deno.mkdir(folder);
    const it = followLines(path, { pollMs: 5, folder, signal: stop.signal });
    const first = it.next();
    await new Promise((r) => setTimeout(r, 50));
    await Deno.writeTextFile(path, "a\n");
    assertEquals((await first).value, { line: "a", end: 2, number: 1 });
    await Deno.remove(folder, { recursive: true });
    assertEquals((await it.next()).value, { gone: true });
    assertEquals((await it.next()).done, true);
    assertEquals(stop.signal.aborted, false);
  } finally {
    clearTimeout(timer);
    stop.abort();
    await Deno.remove(dir, { recursive: true });
  }
});

// Plants (each fails this test): a read of `to + from` bytes (from 4 MiB
// on, a buffer the size of twice the offset: 1.2 GB for a 600 MB log), a
// part of another size (`4 << 20` moved).
Deno.test("followLines() reads a file in parts of 4 MiB, never more", async () => {
  const path = await Deno.makeTempFile();
  const read = Deno.FsFile.prototype.read;
  const asked: number[] = [];
  try {
    const line = "x".repeat(999) + "\n";
    await Deno.writeTextFile(path, line.repeat(10 << 10)); // 10 MiB
    Deno.FsFile.prototype.read = function (p: Uint8Array) {
      asked.push(p.length);
      return read.call(this, p);
    };
    let lines = 0;
    for await (const _ of followLines(path, { once: true })) lines++;
    assertEquals(lines, 10 << 10);
    assertEquals(Math.max(...asked), 4 << 20);
  } finally {
    Deno.FsFile.prototype.read = read;
    await Deno.remove(path);
  }
});

// Plants (each fails this test): a line not yet ended kept whole whatever
// its length (`!skipping && …` → `||`: a 600 MB line held in memory), or
// its parts' bytes subtracted (`pendingBytes + rest.length` → `-`).
Deno.test("followLines() keeps no more than maxLine bytes of a line whose end it has not read", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/m.jsonl`;
  const slice = Uint8Array.prototype.slice;
  let copied = 0;
  // What the generator holds of a line is copied out of each read.
  Uint8Array.prototype.slice = function (start?: number, end?: number) {
    const out = slice.call(this, start, end);
    copied += out.length;
    return out;
  };
  try {
    // 20 MiB without a newline (five 4 MiB reads), then its end and a line.
    const got = await followAppends(
      path,
      ["x".repeat(20 << 20), "\nab\n"],
      1 << 20,
      2,
    );
    Uint8Array.prototype.slice = slice;
    assertEquals(got, [
      { skipped: 1, end: (20 << 20) + 1 },
      { line: "ab", end: (20 << 20) + 4, number: 2 },
    ]);
    assert(copied <= 1 << 20, `${copied} bytes of the long line kept`);
  } finally {
    Uint8Array.prototype.slice = slice;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("followLines() with `check` gives `reset` when the bytes before `from` are no longer those read (a log rewritten in the same inode), and resumes when they are", async () => {
  const path = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(path, "a1\nb2\n");
    const first = [];
    for await (const f of followLines(path, { once: true, checks: true })) {
      first.push(f);
    }
    const last = first.at(-1) as { end: number; check: string };
    assertEquals(last.check, tailCheck(new TextEncoder().encode("a1\nb2\n")));
    await Deno.writeTextFile(path, "a1\nb2\nc3\n"); // grown: resumes
    const grown = [];
    for await (
      const f of followLines(path, { once: true, from: 6, check: last.check })
    ) grown.push(f);
    assertEquals(grown, [{ line: "c3", end: 9, number: 1 }]);
    await Deno.writeTextFile(path, "x1\ny2\nz3\n"); // same inode, other log
    const other = [];
    for await (
      const f of followLines(path, { once: true, from: 6, check: last.check })
    ) other.push(f);
    assertEquals(other, [
      { reset: true },
      { line: "x1", end: 3, number: 1 },
      { line: "y2", end: 6, number: 2 },
      { line: "z3", end: 9, number: 3 },
    ]);
  } finally {
    await Deno.remove(path);
  }
});
