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

  /**
   * Append one record.
   *
   * @param record Any JSON-serialisable object; non-finite numbers become null.
   */
  async append(record: Record<string, unknown>): Promise<void> {
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
    return text.split("\n").filter((l) => l.trim() !== "").map((l, i) => {
      try {
        return JSON.parse(l);
      } catch {
        throw new SyntaxError(`${path}:${i + 1} is not a JSON object`);
      }
    });
  }
}
