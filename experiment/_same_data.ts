/**
 * The one comparison of two runs' data, for every reader that needs two
 * runs to share them (`--judge RUN`, `report --merge`): what the data are
 * (each split's SHA-256, plain text or WikiText, and the tokenizer as built,
 * from `data.json`), not
 * where they were (the `--data` path, which data that moved change and a
 * file replaced in place does not).
 *
 * @module
 */
import { TEXT_READING } from "@d3pm/data";
import type { DataRecord } from "./run_folder.ts";

/**
 * How a run's data were read, as messages name it: the same bytes read as
 * WikiText or as plain text, or as plain text by another reading (reading 2
 * made a CR a line break), are cut into other ids.
 *
 * @param r A data record.
 * @returns `WikiText`, or `plain text (reading N of M)`.
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { dataKind } from "./_same_data.ts";
 * const r = { sha256: { train: "a", valid: "b", test: "c" }, tokenizer: { id: "byte", vocabSize: 260 } };
 * assertEquals(dataKind(r), "WikiText");
 * assertEquals(dataKind({ ...r, format: "text" }), "plain text (reading 1 of 2)");
 * ```
 */
export function dataKind(r: DataRecord): string {
  return r.format !== "text"
    ? "WikiText"
    : `plain text (reading ${r.reading ?? 1} of ${TEXT_READING})`;
}

/** One run's data as a comparison sees them. */
export interface DataSide {
  /** How messages name the run (its folder, or "this run"). */
  name: string;
  /** Its `--data` path as its configuration gives it. */
  data: string;
  /** Its `data.json` (none for a run made before data records). */
  record?: DataRecord;
}

/** What {@linkcode compareData} found. */
export interface DataComparison {
  /** Why the data differ, as one clause naming both runs; none when the same. */
  differ?: string;
  /** Said when the data are taken as the same by their path alone (no record to verify it). */
  note?: string;
}

const SPLITS = ["train", "valid", "test"] as const;
const short = (h: string) => `${h.slice(0, 12)}…`;
const shown = (path: string) => JSON.stringify(path);

/**
 * Compare two runs' data. With both records: the same data when every
 * split's SHA-256 and the tokenizer (id and real size) agree, whatever
 * `--data` path each run gave (data moved, or named by another relative
 * path); a split that differs is named with both hashes, and said to be a
 * file replaced in place when the paths are the same. Without a record on
 * either side (a run made before `data.json`): by the `--data` path, as
 * before records existed; the same path passes with a note that it was not
 * verified.
 *
 * @param a The run compared against.
 * @param b The other run.
 * @returns The difference and the note, each when there is one.
 */
export function compareData(a: DataSide, b: DataSide): DataComparison {
  if (a.record === undefined || b.record === undefined) {
    const without = [a, b].filter((s) => s.record === undefined)
      .map((s) => s.name).join(" and ");
    const unrecorded = `${without} ${
      a.record === undefined && b.record === undefined ? "have" : "has"
    } no data.json (made before data records)`;
    if (a.data !== b.data) {
      return {
        differ: `--data is ${shown(b.data)} in ${b.name} but ${
          shown(a.data)
        } in ${a.name}, and ${unrecorded} to show they are the same files`,
      };
    }
    return {
      note:
        `note: ${unrecorded}: its data are taken to be ${a.name}'s and ${b.name}'s by their --data path ${
          shown(a.data)
        } alone, not verified by the files' SHA-256`,
    };
  }
  const ra = a.record, rb = b.record;
  if (dataKind(ra) !== dataKind(rb)) {
    return {
      differ: `their data differ: ${dataKind(rb)} in ${b.name} but ${
        dataKind(ra)
      } in ${a.name} (their data.json)`,
    };
  }
  const changed = SPLITS.filter((s) => ra.sha256[s] !== rb.sha256[s]);
  if (changed.length > 0) {
    const where = a.data === b.data
      ? `the same --data path ${
        shown(a.data)
      }, its files replaced between the runs`
      : `--data ${shown(b.data)} in ${b.name}, ${shown(a.data)} in ${a.name}`;
    return {
      differ: `their data differ (${where}): ${
        changed.map((s) =>
          `${s} SHA-256 ${short(rb.sha256[s])} in ${b.name} but ${
            short(ra.sha256[s])
          } in ${a.name}`
        ).join("; ")
      } (their data.json)`,
    };
  }
  if (
    ra.tokenizer.id !== rb.tokenizer.id ||
    ra.tokenizer.vocabSize !== rb.tokenizer.vocabSize
  ) {
    return {
      differ:
        `their tokenizers differ (${rb.tokenizer.id} with ${rb.tokenizer.vocabSize} ids in ${b.name} but ${ra.tokenizer.id} with ${ra.tokenizer.vocabSize} in ${a.name}; their data.json)`,
    };
  }
  return {};
}
