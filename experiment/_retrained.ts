/**
 * What a `--resume` says of a trained model it trains again: one whose
 * weights fail their check with no checkpoint to resume from.
 *
 * @module
 */
import { pathExists } from "@d3pm/core";
import { ConfigError } from "./options.ts";
import type { RunFolder } from "./run_folder.ts";
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
