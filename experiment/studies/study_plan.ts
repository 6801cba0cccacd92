/**
 * A study's plan as its `sweep.json` holds it (the collect step's command
 * line), and the refusal of an option that contradicts it: what `--collect`
 * and `--cell` of a planned study share, so that a table or a cell is of
 * the cells the plan ran.
 *
 * @module
 */
import { flagOf, keyOf } from "@d3pm/cli";
import { ConfigError } from "../options.ts";
import { readSweep } from "../sweep.ts";

/** A study's plan, read from its folder's `sweep.json`. */
export interface StudyPlan {
  /** The plan's file (`DIR/sweep.json`). */
  file: string;
  /** Its collect step's arguments: the study's name, its flags, `--collect`. */
  args: string[];
  /** Its flags' values by option key (`validBlocks`), as written. */
  flags: Record<string, string>;
}

/**
 * The plan in `DIR/sweep.json`, or undefined where the folder holds none.
 *
 * @param dir The study's folder.
 * @returns The plan.
 * @throws {ConfigError} When `sweep.json` is not a sweep record.
 *
 * @example
 * ```ts
 * import { readStudyPlan } from "@d3pm/experiment/studies";
 * import { saveSweep, studySweep } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * assertEquals(await readStudyPlan(dir), undefined);
 * await saveSweep(studySweep(dir, "examples/study.ts", [
 *   { name: "a", values: { u: 1 }, out: `${dir}/a`, args: ["epochs", "--cell", "a"], wave: 0 },
 * ], ["epochs", "--u", "100", "--valid-blocks", "8", "--collect"]));
 * const plan = await readStudyPlan(dir);
 * assertEquals(plan?.flags, { u: "100", validBlocks: "8" });
 * assertEquals(plan?.args[0], "epochs");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readStudyPlan(
  dir: string,
): Promise<StudyPlan | undefined> {
  const clean = dir.replace(/\/+$/, "");
  try {
    await Deno.lstat(`${clean}/sweep.json`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  const args = [...(await readSweep(clean)).collect ?? []];
  const flags: Record<string, string> = {};
  for (let i = 1; i + 1 < args.length; i += 2) {
    flags[keyOf(args[i].replace(/^--/, ""))] = args[i + 1];
  }
  return { file: `${clean}/sweep.json`, args, flags };
}

/**
 * Refuse the first option given that contradicts the plan: each key of
 * `given` with a value must have the plan's value (an absent one: the
 * plan leaves the option out).
 *
 * @param plan The plan's file and its values, each as its flag would be written.
 * @param given The options given on the command line, written the same way.
 * @param mode The mode that takes the plan's options (`--collect`, `--cell`).
 * @throws {ConfigError} Naming the option, its value and the plan's.
 *
 * @example
 * ```ts
 * import { refuseContradictions } from "@d3pm/experiment/studies";
 * import { assertThrows } from "@std/assert";
 * const plan = { file: "runs/e/sweep.json", flags: { tokens: "16000" } };
 * refuseContradictions(plan, { tokens: "16000" }, "--collect");
 * assertThrows(
 *   () => refuseContradictions(plan, { tokens: "4000" }, "--collect"),
 *   Error,
 *   "Option --tokens 4000 contradicts the study's plan in runs/e/sweep.json (--tokens 16000): leave it out, --collect takes the plan's",
 * );
 * assertThrows(
 *   () => refuseContradictions(plan, { engine: "cpu" }, "--cell"),
 *   Error,
 *   "Option --engine cpu contradicts the study's plan in runs/e/sweep.json (no --engine): leave it out, --cell takes the plan's",
 * );
 * ```
 */
export function refuseContradictions(
  plan: { file: string; flags: Readonly<Record<string, string | undefined>> },
  given: Readonly<Record<string, string | undefined>>,
  mode: string,
): void {
  for (const [key, want] of Object.entries(given)) {
    const planned = plan.flags[key];
    if (want === undefined || want === planned) continue;
    const flag = `--${flagOf(key)}`;
    throw new ConfigError(
      `Option ${flag} ${want} contradicts the study's plan in ${plan.file} (${
        planned === undefined ? `no ${flag}` : `${flag} ${planned}`
      }): leave it out, ${mode} takes the plan's`,
    );
  }
}
