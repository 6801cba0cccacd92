/**
 * An append-only JSON-lines metrics log.
 *
 * @module
 */

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
   * Read every record of a log.
   *
   * @param path The `.jsonl` file.
   * @returns The records, in order.
   */
  static async read(path: string): Promise<Record<string, unknown>[]> {
    const text = await Deno.readTextFile(path);
    const lines = text.split("\n");
    const records: Record<string, unknown>[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() === "") continue;
      try {
        records.push(JSON.parse(lines[i]));
      } catch {
        // A write cut short (a full disk, a kill) leaves a torn last line.
        if (i === lines.length - 1 && !text.endsWith("\n")) {
          console.error(
            `warning: ${path}:${i + 1} is a torn, unfinished record; ignored`,
          );
          break;
        }
        throw new SyntaxError(`${path}:${i + 1} is not a JSON object`);
      }
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
