/**
 * What a `--resume` does with a trained model that has no checkpoint to
 * resume from: one whose weights fail their check is trained again, with a
 * warning; one whose weights pass is finished, evaluated as it is, or —
 * when its `process.json` does not record its training's figures — refused.
 *
 * @module
 */
import { pathExists, readJsonBounded } from "@d3pm/core";
import type { EngineSpan } from "@d3pm/train";
import type { InitFigures } from "./init_from.ts";
import { ConfigError } from "./options.ts";
import {
  type RunFolder,
  TRAINING_RECORD,
  WEIGHTS_SHA256,
} from "./run_folder.ts";
import { WeightsError } from "./_weights.ts";

/**
 * The `warning:` line for a model a resume trains from its first step
 * although its folder holds one trained (`model.safetensors` and
 * `process.json`) whose weights fail their SHA-256 or seed check, with no
 * `checkpoint.safetensors` to resume from; undefined otherwise (a
 * checkpoint resumes and rewrites the model; no trained model, or one that
 * passes, is not this case). As the cached tokenizer's "unreadable;
 * training it again" (data.ts): say what is replaced, then replace it.
 *
 * @param folder The run folder.
 * @param seed The seed.
 * @param kind The contestant.
 * @returns One line, or undefined.
 *
 * @example
 * ```ts
 * import { retrainedWarning } from "./_retrained.ts";
 * import { RunFolder } from "@d3pm/experiment";
 * import { assertEquals, assertStringIncludes } from "@std/assert";
 * const folder = new RunFolder(await Deno.makeTempDir());
 * await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
 * await Deno.writeTextFile(folder.weightsPath(0, "ar"), "weights");
 * await folder.writeProcess(0, "ar", {});
 * assertEquals(await retrainedWarning(folder, 0, "ar"), undefined);
 * await Deno.writeTextFile(folder.weightsPath(0, "ar"), "other weights");
 * assertStringIncludes(
 *   (await retrainedWarning(folder, 0, "ar"))!,
 *   "the ar model of seed 0 is trained again from its first step",
 * );
 * await Deno.remove(folder.dir, { recursive: true });
 * ```
 */
export async function retrainedWarning(
  folder: RunFolder,
  seed: number,
  kind: string,
): Promise<string | undefined> {
  const weights = folder.weightsPath(seed, kind);
  if (
    await pathExists(folder.checkpointPath(seed, kind)) ||
    !await pathExists(weights) ||
    !await pathExists(folder.processPath(seed, kind))
  ) return undefined;
  try {
    await folder.verifyWeights(seed, kind);
    return undefined;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // Its reason, without its advice (which offers the resume now running,
    // or removing the folder that this training replaces).
    const why = e instanceof WeightsError
      ? e.reason
      : e.message.split("\n")[0].split("; ")[0];
    return `warning: ${why}; with no ${
      folder.checkpointPath(seed, kind)
    } to resume from, the ${kind} model of seed ${seed} is trained again from its first step, replacing it`;
  }
}

/** What a trained model's `process.json` records of its training. */
export interface RecordedTraining {
  /** The SHA-256 of its `model.safetensors`, as its process.json records. */
  weightsSha256: string;
  /** Seconds spent training. */
  seconds: number;
  /** The loop's `lastLoss` (NaN, written null, when none). */
  lastLoss: number;
  /** The steps `lastLoss` averages (absent in records of older versions). */
  lastLossSteps?: [number, number];
  /** What ran the training steps (absent when the run named none). */
  engines?: EngineSpan[];
  /** The model it started from (`--init-from`). */
  initFrom?: InitFigures;
  /**
   * What it was trained under: `checkpointTies(…).config` (the training
   * fingerprint, contestant, seed, data and `--init-from` weights), as a
   * checkpoint stores it; compared before the model is taken as this run's.
   */
  config: Record<string, unknown>;
}

/**
 * On `--resume`, a model that is trained although its checkpoint is
 * missing (deleted after it finished, say): its `model.safetensors` and
 * `process.json` exist, and the weights pass their SHA-256 and seed check.
 * Its training's figures are then those its `process.json` records (see
 * {@linkcode TRAINING_RECORD}), and the resume evaluates it as it is
 * rather than training it again over weights that are whole. Undefined
 * for any other model: one with a checkpoint (resumed from it), one not
 * trained, one whose weights fail their check ({@linkcode retrainedWarning}).
 *
 * @param folder The run folder.
 * @param seed The seed.
 * @param kind The contestant.
 * @returns Its record, or undefined.
 * @throws {ConfigError} In one line, when the model is trained but its
 *   `process.json` records no SHA-256 or no training figures (written by an
 *   import or an older version): naming the checkpoint, and the way out
 *   (restore it, or remove the model's folder to train it anew).
 *
 * @example
 * ```ts
 * import { finishedTraining } from "./_retrained.ts";
 * import { RunFolder } from "@d3pm/experiment";
 * import { assertEquals, assertRejects } from "@std/assert";
 * const folder = new RunFolder(await Deno.makeTempDir());
 * await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
 * await Deno.writeTextFile(folder.weightsPath(0, "ar"), "weights");
 * await folder.writeProcess(0, "ar", {}, { training: { seconds: 9, lastLoss: 2.5, config: { seed: 0 } } });
 * const older = await finishedTraining(folder, 0, "ar"); // an older version's record
 * assertEquals([older?.seconds, older?.lastLossSteps], [9, undefined]);
 * await folder.writeProcess(0, "ar", {}, { training: { seconds: 9, lastLoss: 2.5, lastLossSteps: [91, 100], config: { seed: 0 } } });
 * assertEquals((await finishedTraining(folder, 0, "ar"))?.lastLossSteps, [91, 100]);
 * await folder.writeProcess(0, "ar", {}); // as an import writes it
 * await assertRejects(() => finishedTraining(folder, 0, "ar"), Error, "does not record");
 * await Deno.remove(folder.dir, { recursive: true });
 * ```
 */
export async function finishedTraining(
  folder: RunFolder,
  seed: number,
  kind: string,
): Promise<RecordedTraining | undefined> {
  const path = folder.processPath(seed, kind);
  if (
    await pathExists(folder.checkpointPath(seed, kind)) ||
    !await pathExists(folder.weightsPath(seed, kind)) ||
    !await pathExists(path)
  ) return undefined;
  try {
    await folder.verifyWeights(seed, kind);
  } catch (e) {
    if (e instanceof ConfigError) return undefined; // trained again
    throw e;
  }
  const saved = await readJsonBounded(path, {
    limit: 1 << 20,
    what: "process description",
  }) as Record<string, unknown>;
  const recorded = trainingOf(saved[TRAINING_RECORD]);
  const sha = saved[WEIGHTS_SHA256];
  if (typeof sha === "string" && recorded) {
    return { weightsSha256: sha, ...recorded };
  }
  throw new ConfigError(
    `${
      folder.checkpointPath(seed, kind)
    } is missing, and the ${kind} model of seed ${seed} beside it is trained, but its ${path} (written by an import or an older version) does not record the ${
      typeof sha === "string" ? "training's figures" : "weights' SHA-256"
    } a resume would read from the checkpoint: restore the checkpoint, or remove ${
      folder.modelDir(seed, kind)
    } to train the model anew`,
  );
}

// The training record, when it has the shape writeProcess gives it.
function trainingOf(
  raw: unknown,
): Omit<RecordedTraining, "weightsSha256"> | undefined {
  const r = raw as Record<string, unknown> | null | undefined;
  if (typeof r !== "object" || r === null || Array.isArray(r)) return;
  const { seconds, lastLoss, lastLossSteps, engines, initFrom, config } = r;
  const covered = Array.isArray(lastLossSteps) &&
    lastLossSteps.length === 2 && lastLossSteps.every(Number.isSafeInteger);
  const spans = Array.isArray(engines) &&
    engines.every((s) =>
      typeof s?.engine === "string" && Number.isSafeInteger(s?.fromStep)
    );
  if (
    typeof seconds !== "number" ||
    !(typeof lastLoss === "number" || lastLoss === null) ||
    !(engines === undefined || spans) ||
    !(lastLossSteps === undefined || covered) ||
    !(initFrom === undefined ||
      (typeof initFrom === "object" && initFrom !== null)) ||
    typeof config !== "object" || config === null || Array.isArray(config)
  ) return;
  return {
    config: config as Record<string, unknown>,
    seconds,
    lastLoss: lastLoss ?? NaN,
    ...(covered ? { lastLossSteps: lastLossSteps as [number, number] } : {}),
    ...(engines ? { engines: engines as EngineSpan[] } : {}),
    ...(initFrom ? { initFrom: initFrom as InitFigures } : {}),
  };
}
