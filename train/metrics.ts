/**
 * An append-only JSON-lines metrics log.
 *
 * @module
 */
import {
  BoundedReadError,
  followLines,
  formatBytes,
  readAt,
  readHeadBounded,
} from "@d3pm/core";

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
   * Read every record of a log (see {@linkcode MetricsLog.records}, which
   * streams them: a caller that needs only some keeps only those).
   *
   * @param path The `.jsonl` file.
   * @param warn Where a dropped line is reported (default: stderr).
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
    warn?: (message: string) => void,
  ): Promise<Record<string, unknown>[]> {
    const records: Record<string, unknown>[] = [];
    for await (const r of MetricsLog.records(path, { warn })) records.push(r);
    return records;
  }

  /**
   * The records of a log, a line at a time (never the file whole as one
   * string, which V8 caps near 512 MiB: a 629 MB log failed a resume with
   * "buffer exceeds maximum length"). A line that is not a JSON object — a
   * torn last line, or garbage written into the middle — is dropped with a
   * warning naming it, so one bad line never blocks a run (a line over
   * 1 MiB unread). The log must be a regular file of at most
   * `limit` bytes (1 GiB).
   *
   * @param path The `.jsonl` file.
   * @param options Where warnings go, and the largest log read.
   * @returns The records, in order, as they are read.
   * @throws {BoundedReadError} For a FIFO, a device, a folder or a file
   *   over the limit, naming it.
   * @throws {Deno.errors.NotFound} When there is no log.
   *
   * @example Only what is needed is kept
   * ```ts
   * import { MetricsLog } from "@d3pm/train";
   * import { assertEquals } from "@std/assert";
   * const dir = await Deno.makeTempDir();
   * await Deno.writeTextFile(`${dir}/m.jsonl`, '{"step":1,"loss":3}\n{"step":1,"valid":4}\n{"ste');
   * const warnings: string[] = [];
   * const valid = [];
   * for await (const r of MetricsLog.records(`${dir}/m.jsonl`, { warn: (w) => warnings.push(w) })) {
   *   if (typeof r.valid === "number") valid.push(r.valid);
   * }
   * assertEquals(valid, [4]);
   * assertEquals(warnings, [`${dir}/m.jsonl:3 is a torn, unfinished record; ignored`]);
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static async *records(
    path: string,
    options: MetricsReadOptions = {},
  ): AsyncGenerator<Record<string, unknown>> {
    const warn = options.warn ?? ((m) => console.error(`warning: ${m}`));
    const limit = options.limit ?? 1 << 30;
    // A regular file within the limit (readHeadBounded refuses the rest).
    const { size } = await readHeadBounded(path, {
      bytes: 0,
      what: "metrics log",
    });
    if (size > limit) {
      throw new BoundedReadError(
        `Cannot read ${path}: it is larger than the ${
          formatBytes(limit)
        } a metrics log may be`,
      );
    }
    let number = 0, end = 0;
    for await (const f of followLines(path, { once: true })) {
      if ("skipped" in f) {
        ({ skipped: number, end } = f);
        warn(`${path}:${number} is over 1 MiB, not a record; ignored`);
        continue;
      }
      if ("reset" in f) {
        // Shrunk under us (a resume cutting a torn tail, a rewrite): what
        // came before was read once; reading it again would repeat it.
        warn(`${path} shrank while it was read; read up to line ${number}`);
        break;
      }
      if (!("line" in f)) continue; // no gone without a folder
      ({ number, end } = f);
      let record: unknown;
      try {
        record = JSON.parse(f.line);
      } catch { /* below */ }
      if (
        typeof record === "object" && record !== null && !Array.isArray(record)
      ) {
        yield record as Record<string, unknown>;
      } else warn(`${path}:${number} is not a JSON object; ignored`);
    }
    const tail = await readTail(path, end);
    // A complete record whose newline is missing (a disk that filled on the
    // last byte, an editor that drops the final newline) is kept; a write
    // cut short anywhere else (a full disk, a kill) leaves a torn line.
    if (tail.record) yield tail.record;
    else if (tail.lines) {
      warn(
        `${path}:${number + tail.lines} is a torn, unfinished record; ignored`,
      );
    }
  }
}

/** Options of {@linkcode MetricsLog.records}. */
export interface MetricsReadOptions {
  /** Where a dropped line is reported (default: stderr, as `warning: …`). */
  warn?: (message: string) => void;
  /** The largest log read, bytes (default 1 GiB). */
  limit?: number;
}

/**
 * After the last complete line (at `from`), whether the log ends in an
 * unfinished line that is not blank: then how many lines on it is (the
 * blank lines before it counted, however many), and the record it holds
 * when it is a whole JSON object ({@linkcode wholeRecord}); else 0 lines.
 */
async function readTail(
  path: string,
  from: number,
): Promise<{ lines: number; record?: Record<string, unknown> }> {
  using file = await Deno.open(path);
  const size = (await file.stat()).size;
  // Count the line breaks after `from` in parts (blank lines, any number,
  // then perhaps a torn line), noting where the last line starts.
  let breaks = 0, start = Math.min(from, size);
  for (let at = start; at < size; at += TAIL_PART) {
    const part = await readAt(file, at, Math.min(TAIL_PART, size - at));
    for (let i = part.indexOf(10); i >= 0; i = part.indexOf(10, i + 1)) {
      breaks++;
      start = at + i + 1;
    }
  }
  if (start === size) return { lines: 0 };
  // A line over 1 MiB is no record (followLines skips such lines unread).
  if (size - start > MAX_LINE) return { lines: breaks + 1 };
  const last = new TextDecoder().decode(
    await readAt(file, start, size - start),
  );
  if (last.trim() === "") return { lines: 0 };
  const record = wholeRecord(last);
  return { lines: breaks + 1, ...(record ? { record } : {}) };
}

// How much of a log's tail is read at a time.
const TAIL_PART = 4 << 20;

// The longest line read as a record (followLines' default maxLine).
const MAX_LINE = 1 << 20;

/**
 * The record an unfinished last line holds when it is a whole JSON object.
 * The writer appends `JSON.stringify(record) + "\n"` in one write, so a
 * write cut short leaves a prefix of that text; a prefix that parses as an
 * object must end with the object's closing brace, the last character
 * before the newline: the record is whole and only its newline is missing.
 */
function wholeRecord(line: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : undefined;
}

/**
 * Make a log end in a newline before appending: an unfinished last line
 * that is a whole record ({@linkcode wholeRecord}) gets its newline, with a
 * note; any other is cut off, with a warning.
 */
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
    const keep = await lastLineStart(file, size);
    if (keep === size) return; // ends cleanly
    const tail = size - keep <= MAX_LINE
      ? wholeRecord(
        new TextDecoder().decode(await readAt(file, keep, size - keep)),
      )
      : undefined;
    if (tail) {
      console.error(
        `note: ${path} ended without the newline after its last record; added`,
      );
      await file.seek(0, Deno.SeekMode.End);
      await file.write(new Uint8Array([10]));
      return;
    }
    console.error(
      `warning: ${path} ends in a torn record (${size - keep} bytes); dropped`,
    );
    await file.truncate(keep);
  } finally {
    file.close();
  }
}

// The offset just after the file's last newline (0 when it has none),
// read back from its end.
async function lastLineStart(file: Deno.FsFile, size: number): Promise<number> {
  const chunk = 1 << 16;
  for (let at = size; at > 0;) {
    const from = Math.max(0, at - chunk);
    const nl = (await readAt(file, from, at - from)).lastIndexOf(10);
    if (nl >= 0) return from + nl + 1;
    at = from;
  }
  return 0;
}
