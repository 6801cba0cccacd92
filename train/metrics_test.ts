import { BoundedReadError, MAX_TEXT_BYTES } from "@d3pm/core";
import { assertEquals, assertRejects } from "@std/assert";
import { MetricsLog } from "./metrics.ts";

Deno.test("MetricsLog.read() reads a log longer than one string holds, a line at a time, and names a torn last line by its number", async () => {
  // A 629 MB log failed a resume with "buffer exceeds maximum length": it
  // was read whole into one string. Here a sparse run of NUL bytes (no disk,
  // a line over 1 MiB, dropped unread and named) puts the log past
  // MAX_TEXT_BYTES.
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  try {
    await Deno.writeTextFile(path, '{"step":1,"valid":3}\n');
    {
      using f = await Deno.open(path, { write: true });
      await f.truncate(MAX_TEXT_BYTES + 1);
    }
    await Deno.writeTextFile(path, '\n{"step":2,"valid":2}\n\n{"ste', {
      append: true,
    });
    const warnings: string[] = [];
    const records = await MetricsLog.read(path, (m) => warnings.push(m));
    assertEquals(records, [{ step: 1, valid: 3 }, { step: 2, valid: 2 }]);
    assertEquals(warnings, [
      `${path}:2 is over 1 MiB, not a record; ignored`,
      `${path}:5 is a torn, unfinished record; ignored`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MetricsLog.records() refuses a log over its limit before reading it, naming the file and the limit", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  try {
    await Deno.writeTextFile(path, '{"step":1}\n{"step":2}\n'); // 22 bytes
    const read = async (limit: number) => {
      const out = [];
      for await (const r of MetricsLog.records(path, { limit })) out.push(r);
      return out;
    };
    assertEquals((await read(22)).length, 2);
    await assertRejects(
      () => read(21),
      BoundedReadError,
      `Cannot read ${path}: it is larger than the 21 B a metrics log may be`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plants (each fails this test): the last line kept only when it ends in
// a newline (the code before: the whole record read as torn and, on the
// next append, cut off); any parseable last line kept (`7`, a JSON number
// the writer never writes); a line read from the middle (its last 1 MiB)
// taken as a whole record; the repair adding a newline to a torn line.
Deno.test("MetricsLog keeps a whole last record that lacks its newline, adds the newline before appending, and still drops a torn one", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  const read = async () => {
    const warnings: string[] = [];
    const records = await MetricsLog.read(path, (m) => warnings.push(m));
    return { records, warnings };
  };
  try {
    // What a write that lost only its last byte leaves behind.
    await Deno.writeTextFile(
      path,
      '{"step":1,"loss":3}\n\n{"step":2,"loss":2}',
    );
    assertEquals(await read(), {
      records: [{ step: 1, loss: 3 }, { step: 2, loss: 2 }],
      warnings: [],
    });
    await new MetricsLog(path).append({ step: 3, loss: 1 });
    assertEquals(
      await Deno.readTextFile(path),
      '{"step":1,"loss":3}\n\n{"step":2,"loss":2}\n{"step":3,"loss":1}\n',
    );
    // A prefix of a record, or a JSON value that is no record, is torn.
    for (const tail of ['{"step":4,"loss":', "7"]) {
      await Deno.writeTextFile(path, `{"step":1}\n${tail}`);
      assertEquals(await read(), {
        records: [{ step: 1 }],
        warnings: [`${path}:2 is a torn, unfinished record; ignored`],
      });
      await new MetricsLog(path).append({ step: 2 });
      assertEquals(await Deno.readTextFile(path), '{"step":1}\n{"step":2}\n');
    }
    // A line over 1 MiB whose last MiB parses is not a record.
    const long = `xx{"a":"${"y".repeat((1 << 20) - 8)}"}`;
    await Deno.writeTextFile(path, `{"step":1}\n${long}`);
    assertEquals((await read()).records, [{ step: 1 }]);
    await new MetricsLog(path).append({ step: 2 });
    assertEquals(await Deno.readTextFile(path), '{"step":1}\n{"step":2}\n');
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: the reset of a log that shrank mid-read followed (the code before:
// followLines read it again from 0, and 44,153 of 216,369 records came twice
// in a review's run) — steps repeat and no warning is given.
Deno.test("MetricsLog.records() stops with a warning when the log shrinks while it is read, yielding no record twice", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  try {
    // ~5.9 MB: more than followLines' 4 MiB part, so the shrink is seen
    // between two parts.
    const lines = Array.from(
      { length: 250_000 },
      (_, i) => `{"step":${i + 1},"loss":1.5}\n`,
    );
    await Deno.writeTextFile(path, lines.join(""));
    const cut = lines.slice(0, 1000).join("").length; // a line boundary
    const warnings: string[] = [];
    const steps: number[] = [];
    for await (
      const r of MetricsLog.records(path, { warn: (m) => warnings.push(m) })
    ) {
      if (steps.length === 0) {
        using f = await Deno.open(path, { write: true });
        await f.truncate(cut);
      }
      steps.push(r.step as number);
    }
    // Every record of the first part, once, in order; then the warning.
    const part = new TextEncoder().encode(lines.join("")).subarray(0, 4 << 20);
    const whole = new TextDecoder().decode(part).split("\n").length - 1;
    assertEquals(steps.length, whole);
    assertEquals(steps[steps.length - 1], whole);
    assertEquals(warnings, [
      `${path} shrank while it was read; read up to line ${whole}`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: the tail's lines counted only within its last 1 MiB (the code
// before) — a torn line over 1 MiB after a blank line was named as line 2,
// and one after 1,048,581 blank lines as 1,048,575.
Deno.test("MetricsLog names a torn last line by its true number after a long blank run or when it is over 1 MiB", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  const warned = async () => {
    const warnings: string[] = [];
    await MetricsLog.read(path, (m) => warnings.push(m));
    return warnings;
  };
  try {
    await Deno.writeTextFile(
      path,
      `{"step":1}\n\n{"a":"${"y".repeat(1 << 20)}`,
    );
    assertEquals(await warned(), [
      `${path}:3 is a torn, unfinished record; ignored`,
    ]);
    await Deno.writeTextFile(
      path,
      `{"step":1}\n${"\n".repeat(1_048_581)}{"ste`,
    );
    assertEquals(await warned(), [
      `${path}:1048583 is a torn, unfinished record; ignored`,
    ]);
    // A blank run longer than one 4 MiB part of the tail: each break
    // counted once (plant: a part read as `Math.max(TAIL_PART, …)`).
    await Deno.writeTextFile(path, `{"step":1}\n${"\n".repeat(5 << 20)}{"ste`);
    assertEquals(await warned(), [
      `${path}:${(5 << 20) + 2} is a torn, unfinished record; ignored`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plants (each fails this test): the last line's start placed a byte or
// more off (`at + i + 1` → `+ 0`, `- 1`, `at - i + 1`), the 1 MiB bound
// at `>=` or over `size + start`, or moved (`1 << 20` → `2 << 20`,
// `1 << 21`), trailing blanks taken as a torn line (`lines: 0` → `1`), a
// log of one unfinished line read from byte 1 or numbered from 2 (`end`,
// `number` = 0 → 1).
Deno.test("MetricsLog keeps a last record without its newline of exactly 1 MiB after blank lines, drops one a byte longer, and ends on blanks without a warning", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  const read = async () => {
    const warnings: string[] = [];
    const records = await MetricsLog.read(path, (m) => warnings.push(m));
    return { records, warnings };
  };
  try {
    const mib = 1 << 20;
    const record = (bytes: number) => ({ a: "y".repeat(bytes - 8) });
    assertEquals(JSON.stringify(record(mib)).length, mib);
    for (const [bytes, kept] of [[mib, true], [mib + 1, false]] as const) {
      const last = record(bytes);
      await Deno.writeTextFile(
        path,
        `{"step":1}\n   \n \n${JSON.stringify(last)}`,
      );
      assertEquals(
        await read(),
        kept ? { records: [{ step: 1 }, last], warnings: [] } : {
          records: [{ step: 1 }],
          warnings: [`${path}:4 is a torn, unfinished record; ignored`],
        },
        `${bytes} bytes`,
      );
    }
    await Deno.writeTextFile(path, '{"step":1}\n\n  ');
    assertEquals(await read(), { records: [{ step: 1 }], warnings: [] });
    // One line, unfinished: whole, or torn on line 1.
    await Deno.writeTextFile(path, '{"step":1}');
    assertEquals(await read(), { records: [{ step: 1 }], warnings: [] });
    await Deno.writeTextFile(path, '{"ste');
    assertEquals(await read(), {
      records: [],
      warnings: [`${path}:1 is a torn, unfinished record; ignored`],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: the tail read in parts of `size + at` bytes (past the size it
// found: a record appended meanwhile moved the last line's start past
// the end, and a buffer of negative length threw — `sweep status` reads
// the logs of cells still training).
Deno.test("MetricsLog.records() reads the tail as far as the size it found when the log grows meanwhile", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  const stat = Deno.FsFile.prototype.stat;
  try {
    await Deno.writeTextFile(path, '{"step":1}\n{"ste');
    // The writer finishes its line and writes another once the tail's
    // size is taken (the stat of readTail, told by the stack).
    Deno.FsFile.prototype.stat = async function () {
      const info = await stat.call(this);
      if (new Error().stack?.includes("readTail")) {
        await Deno.writeTextFile(path, 'p":2}\n{"step":3}\n', {
          append: true,
        });
      }
      return info;
    };
    const warnings: string[] = [];
    const records = await MetricsLog.read(path, (m) => warnings.push(m));
    assertEquals(records, [{ step: 1 }]);
    assertEquals(warnings, [`${path}:2 is a torn, unfinished record; ignored`]);
  } finally {
    Deno.FsFile.prototype.stat = stat;
    await Deno.remove(dir, { recursive: true });
  }
});

// Plants (each fails this test): a one-byte log taken as empty
// (`size === 0` → `=== 1`), the search back for the last newline never
// reading byte 0 (`at > 0` → `> 1`, `Math.max(0, …)` → `Math.max(1, …)`)
// or a newline at a read's first byte (`nl >= 0` → `> 0`, `>= 1`), or
// looping at byte 0 (`at > 0` → `>= 0`), a log without a newline cut
// after its first byte (`return 0` → `1`), a whole last record of exactly
// 1 MiB cut off (`size - keep <= MAX_LINE` → `+`, `<`).
Deno.test("MetricsLog's first append cuts a torn last line back to the newline before it, wherever that is, and ends a whole one of 1 MiB", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  const whole = JSON.stringify({ a: "y".repeat((1 << 20) - 8) });
  try {
    for (
      const [before, after] of [
        ["{", ""], // one byte
        ['\n{"ste', "\n"], // the only newline at byte 0
        [`\n${"x".repeat(1 << 16)}`, "\n"], // ... one 64 KiB read back
        [`{"step":1}\n${whole}`, `{"step":1}\n${whole}\n`],
      ]
    ) {
      await Deno.writeTextFile(path, before);
      await new MetricsLog(path).append({ step: 2 });
      assertEquals(
        await Deno.readTextFile(path),
        `${after}{"step":2}\n`,
        before.slice(0, 12),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
