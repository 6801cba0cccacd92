/**
 * An append-only JSON-lines metrics log.
 *
 * @module
 */
import { readTextBounded } from "@d3pm/core";

/**
 * Appends one JSON object per line to a file; never rewrites what is there.
 *
 * @example
 * ```ts
 * import { MetricsLog } from "@d3pm/train";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * const log = new MetricsLog(`${dir}/metrics.jsonl`);
 * await log.append({ step: 1, loss: 2.5 });
 * await log.append({ step: 2, loss: 2.4 });
 * assertEquals((await MetricsLog.read(`${dir}/metrics.jsonl`)).length, 2);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class MetricsLog {
  /**
   * A log writing to `path`.
   *
   * @param path The `.jsonl` file (created when missing, appended to otherwise).
   */
  constructor(readonly path: string) {}
  #checked = false;

  /**
   * Append one record.
   *
   * @param record Any JSON-serialisable object; non-finite numbers become null.
   */
  async append(record: Record<string, unknown>): Promise<void> {
    if (!this.#checked) {
      await repairTornTail(this.path);
      this.#checked = true;
    }
    await Deno.writeTextFile(this.path, JSON.stringify(record) + "\n", {
      append: true,
      create: true,
    });
  }

  /**
   * Read every record of a log. A line that is not a JSON object — a torn
   * last line, or garbage written into the middle — is dropped with a
   * warning naming it, so one bad line never blocks a run. The log must be
   * a regular file of at most 1 GiB.
   *
   * @param path The `.jsonl` file.
   * @returns The records, in order.
   * @throws {BoundedReadError} For a FIFO, a device or a file over 1 GiB.
   *
   * @example A garbage line is dropped with a warning
   * ```ts
   * import { MetricsLog } from "@d3pm/train";
   * import { assertEquals } from "@std/assert";
   * const dir = await Deno.makeTempDir();
   * await Deno.writeTextFile(`${dir}/m.jsonl`, '{"step":1}\nnot json\n7\n{"step":2}\n');
   * const warnings: string[] = [];
   * const records = await MetricsLog.read(`${dir}/m.jsonl`, (w) => warnings.push(w));
   * assertEquals(records, [{ step: 1 }, { step: 2 }]);
   * assertEquals(warnings, [
   *   `${dir}/m.jsonl:2 is not a JSON object; ignored`,
   *   `${dir}/m.jsonl:3 is not a JSON object; ignored`,
   * ]);
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static async read(
    path: string,
    warn: (message: string) => void = (m) => console.error(`warning: ${m}`),
  ): Promise<Record<string, unknown>[]> {
    const text = await readTextBounded(path, {
      limit: 1 << 30,
      what: "metrics log",
    });
    const lines = text.split("\n");
    const records: Record<string, unknown>[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() === "") continue;
      let record: unknown;
      try {
        record = JSON.parse(lines[i]);
      } catch { /* below */ }
      if (
        typeof record === "object" && record !== null && !Array.isArray(record)
      ) {
        records.push(record as Record<string, unknown>);
        continue;
      }
      // A write cut short (a full disk, a kill) leaves a torn last line.
      const torn = i === lines.length - 1 && !text.endsWith("\n");
      warn(
        `${path}:${i + 1} is ${
          torn ? "a torn, unfinished record" : "not a JSON object"
        }; ignored`,
      );
    }
    return records;
  }
}

/** Cut an unfinished last line (no newline) off a log, with a warning. */
async function repairTornTail(path: string): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  try {
    const size = (await file.stat()).size;
    if (size === 0) return;
    // Read back from the end to the last newline.
    const chunk = 1 << 16;
    let at = size;
    while (at > 0) {
      const from = Math.max(0, at - chunk);
      const buf = new Uint8Array(at - from);
      await file.seek(from, Deno.SeekMode.Start);
      let got = 0;
      while (got < buf.length) {
        const n = await file.read(buf.subarray(got));
        if (n === null) break;
        got += n;
      }
      const nl = buf.lastIndexOf(10);
      if (at === size && nl === buf.length - 1) return; // ends cleanly
      if (nl >= 0 || from === 0) {
        const keep = nl >= 0 ? from + nl + 1 : 0;
        console.error(
          `warning: ${path} ends in a torn record (${
            size - keep
          } bytes); dropped`,
        );
        await file.truncate(keep);
        return;
      }
      at = from;
    }
  } finally {
    file.close();
  }
}
