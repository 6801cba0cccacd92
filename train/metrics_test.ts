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
