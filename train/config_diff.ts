/**
 * How two saved configurations differ: what a resume compares, in one
 * place for the training loop's checkpoints and the experiment's run folder.
 *
 * @module
 */

/** One key whose value differs. */
export interface ConfigDifference {
  /** The key ("" when the configurations themselves are not objects). */
  key: string;
  /** Its value in the saved configuration (or its default there). */
  saved: unknown;
  /** Its value now. */
  now: unknown;
}

/** Options of {@linkcode configDifferences}. */
export interface ConfigDiffOptions {
  /**
   * Values of keys the saved configuration may lack (keys added since it
   * was written): a missing key reads as its value here.
   */
  defaults?: Readonly<Record<string, unknown>>;
  /** Keys not compared. */
  ignore?: readonly string[];
}

/**
 * Every key whose value differs between a saved configuration and the one
 * asked for now (compared as JSON), in the order of the saved keys, then
 * the new ones.
 *
 * @param saved The configuration a run or checkpoint was made with.
 * @param now The configuration asked for now.
 * @param options Defaults of keys added since, and keys not compared.
 * @returns The differences; empty when there are none.
 *
 * @example
 * ```ts
 * import { configDifferences } from "@d3pm/train";
 * import { assertEquals } from "@std/assert";
 * const saved = { lr: 1e-3, steps: 100, out: "a" };
 * assertEquals(
 *   configDifferences(saved, { lr: 1e-3, steps: 200, out: "b", prior: 0 }, {
 *     defaults: { prior: 0 }, // an older run had no prior: it read as 0
 *     ignore: ["out"],
 *   }),
 *   [{ key: "steps", saved: 100, now: 200 }],
 * );
 * ```
 */
export function configDifferences(
  saved: unknown,
  now: unknown,
  options: ConfigDiffOptions = {},
): ConfigDifference[] {
  const isObject = (x: unknown): x is Record<string, unknown> =>
    typeof x === "object" && x !== null && !Array.isArray(x);
  // A missing configuration compares as an empty one.
  const s = saved ?? {}, n = now ?? {};
  if (!isObject(s) || !isObject(n)) {
    return JSON.stringify(s) === JSON.stringify(n)
      ? []
      : [{ key: "", saved: s, now: n }];
  }
  const a: Record<string, unknown> = { ...options.defaults, ...s };
  const ignore = new Set(options.ignore ?? []);
  const out: ConfigDifference[] = [];
  for (const key of new Set([...Object.keys(a), ...Object.keys(n)])) {
    if (ignore.has(key)) continue;
    if (JSON.stringify(a[key]) !== JSON.stringify(n[key])) {
      out.push({ key, saved: a[key], now: n[key] });
    }
  }
  return out;
}
