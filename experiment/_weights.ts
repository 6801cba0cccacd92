/**
 * The check every reader of a run's trained weights makes: the file's
 * SHA-256 against the one its `process.json` recorded when it was written
 * (see `RunFolder.writeProcess`).
 *
 * @module
 */
import { ConfigError } from "./options.ts";

/**
 * A refused weights file or model folder: a {@linkcode ConfigError} whose
 * message is the reason, then what to do; both also apart, for a caller
 * that is already doing something else about it (a `--resume` training the
 * model again says only the reason: `_retrained.ts`).
 */
export class WeightsError extends ConfigError {
  /** What is wrong, in one line, without what to do. */
  readonly reason: string;
  /** What to do about it. */
  readonly advice: string;
  /**
   * A refusal.
   *
   * @param reason What is wrong.
   * @param advice What to do.
   * @param joint What joins them in the message (`"; "` or `": "`).
   */
  constructor(reason: string, advice: string, joint: string) {
    super(`${reason}${joint}${advice}`);
    this.reason = reason;
    this.advice = advice;
  }
}

/**
 * Refuse a weights file whose SHA-256 is not the one recorded when it was
 * written (another seed's or run's copied in, or an edited one).
 *
 * @param path The weights file.
 * @param recorded The SHA-256 its `process.json` records.
 * @param found The file's SHA-256 now.
 * @param record Another record than the model's `process.json` (a
 *   `keep: best` model's `best.json`), and what to do instead.
 * @throws {WeightsError} In one line: the file, both hashes' first 12 hex
 *   digits, and what to do.
 */
export function checkWeights(
  path: string,
  recorded: string,
  found: string,
  record?: { record: string; fix: string },
): void {
  if (found === recorded) return;
  const dir = path.slice(0, path.lastIndexOf("/"));
  throw new WeightsError(
    `${path} is not the weights this run wrote there: SHA-256 ${
      found.slice(0, 12)
    }…, where ${record?.record ?? "its process.json"} records ${
      recorded.slice(0, 12)
    }… (copied from another seed or run, or changed)`,
    record?.fix ??
      `restore that file, or write it again: --resume the run (from ${dir}/checkpoint.safetensors), or train (or import) it anew`,
    "; ",
  );
}

/**
 * Refuse a model folder whose `process.json` records another seed's
 * weights (the whole folder copied from another seed); none recorded
 * (written before) passes.
 *
 * @param path The `process.json`.
 * @param recorded Its recorded seed, if any.
 * @param seed The seed asked for.
 * @throws {WeightsError} In one line, with what to do.
 */
export function checkSeed(path: string, recorded: unknown, seed: number): void {
  if (recorded === undefined || recorded === seed) return;
  throw new WeightsError(
    `${path} records the weights of seed ${
      JSON.stringify(recorded)?.slice(0, 20)
    }, not of seed ${seed} (the model folder was copied from another seed)`,
    "restore this seed's folder, or train it anew (remove the folder, then --resume)",
    ": ",
  );
}
