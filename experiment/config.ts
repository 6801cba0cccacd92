/**
 * Resolving a configuration: a preset with overrides, each value converted
 * to its option's kind and checked against the option table, then the
 * rules between options and the contestant list; and what a resume
 * compares.
 *
 * @module
 */
import { convertOption, flagOf, keyOf, UsageError } from "@d3pm/cli";
import { configDifferences } from "@d3pm/train";
import { validateConfig } from "@d3pm/transformer";
import {
  ADDED_KEYS,
  ConfigError,
  type ExperimentConfig,
  type ExperimentOption,
  type OptionKey,
  OPTIONS,
  type PresetName,
  RESUMABLE_KEYS,
  RULES,
} from "./options.ts";
import { ignoredKeys } from "./_ignored_keys.ts";
import { PRESETS } from "./presets.ts";
import { contestants, readsOption } from "./registry.ts";

/**
 * A preset with overrides applied, each value converted to its option's
 * kind and checked (every value, the preset's too), then the rules between
 * options and the contestant list.
 *
 * @param overrides Key → value: camelCase or kebab-case keys, strings from
 *   the command line or typed values. A key given as undefined is missing.
 * @param options `unread`: `refuse` (the default) a value that nothing in
 *   the run reads ({@linkcode unreadOption}), unless the configuration
 *   resumes a run; `keep` it (a configuration recorded by an older
 *   version, e.g. a sweep's cell).
 * @returns The resolved configuration.
 * @throws {ConfigError} For an unknown key, a missing or bad value, a value
 *   nothing reads, or a broken rule, naming the option and what it accepts.
 *
 * @example
 * ```ts
 * import { ConfigError, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(resolveConfig({ preset: "micro", steps: "30" }).steps, 30);
 * assertEquals(resolveConfig({ "ar-lr": 0.004 }).arLr, 0.004);
 * assertThrows(() => resolveConfig({ stepz: "3" }), ConfigError, "Unknown option --stepz");
 * assertThrows(() => resolveConfig({ steps: undefined }), ConfigError, "Option --steps needs a value: a positive integer");
 * ```
 */
export function resolveConfig(
  overrides: Readonly<Record<string, unknown>> = {},
  options: { unread?: "refuse" | "keep" } = {},
): ExperimentConfig {
  return asConfigError(() => {
    const name = convertOption(
      "preset",
      OPTIONS.preset,
      "preset" in overrides ? overrides.preset : OPTIONS.preset.default,
    ) as PresetName;
    const config: Record<string, unknown> = { ...PRESETS[name] };
    for (const [rawKey, raw] of Object.entries(overrides)) {
      const key = keyOf(rawKey);
      if (!Object.hasOwn(OPTIONS, key)) {
        throw new ConfigError(
          `Unknown option --${flagOf(key)}: accepted options are ${
            Object.keys(OPTIONS).map((k) => `--${flagOf(k)}`).join(", ")
          }`,
        );
      }
      config[key] = raw;
    }
    return checkConfig(config, { unread: options.unread !== "keep" });
  });
}

/**
 * Why a new run refuses a value of `c` that nothing in the run reads, as
 * one line (undefined: every value is read, or is the option's default,
 * the preset's, which a spread configuration carries along, or its `off`
 * value, `--exact-blocks 0`). An option
 * with `appliesWhen` is read only in that setting (`--vocab-size` with
 * `--tokenizer bpe`); one with `readBy` only by the contestants of
 * `--models` that read it ({@linkcode readsOption}) or a judge of the kinds
 * it names (`--judge-steps`: the auto judge).
 *
 * @param c A configuration whose every value is in its range.
 * @returns The message, naming the option, its readers and what was asked.
 *
 * @example
 * ```ts
 * import { PRESETS, unreadOption } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const c = { ...PRESETS.micro, models: "ar" };
 * assertEquals(unreadOption(c), undefined); // the preset's values pass
 * assertEquals(
 *   unreadOption({ ...c, tMin: 0.1 }),
 *   "Option --t-min is read by the d3pm and bd3 contestants only, and --models is ar: it would be recorded and never used; add one of them to --models, or leave it out",
 * );
 * assertEquals(
 *   unreadOption({ ...PRESETS.micro, judge: "self", judgeSteps: 5 }),
 *   "Option --judge-steps is read by the auto judge only, and --judge is self: it would be recorded and never used; use --judge auto, or leave it out",
 * );
 * ```
 */
export function unreadOption(c: ExperimentConfig): string | undefined {
  const preset = PRESETS[c.preset];
  for (const key of Object.keys(OPTIONS) as OptionKey[]) {
    const spec = OPTIONS[key] as ExperimentOption;
    if (!spec.appliesWhen && !spec.readBy) continue;
    if ([preset[key], spec.default, spec.off].includes(c[key])) continue;
    const why = notApplied(key, spec, c) ?? notRead(key, spec, c);
    if (why) return `Option --${flagOf(key)} ${why}`;
  }
  return undefined;
}

/** Why `key` means nothing in the setting `appliesWhen` names (undefined: it applies). */
function notApplied(
  key: OptionKey,
  spec: ExperimentOption,
  c: ExperimentConfig,
): string | undefined {
  const when = spec.appliesWhen;
  if (!when) return undefined;
  const other = c[when.option as OptionKey];
  const holds = when.values
    ? when.values.includes(other)
    : typeof other === "number" && other > (when.above ?? 0);
  if (holds) return undefined;
  const flag = `--${flagOf(when.option)}`;
  return `applies only with ${flag} ${
    when.values ? when.values.join(" or ") : `above ${when.above}`
  }, got ${flag} ${other}: it would be recorded and never used; ${
    when.values ? `use ${flag} ${when.values.join(" or ")}` : `set ${flag}`
  }, or leave --${flagOf(key)} out`;
}

/** Why no reader of `key` takes part in the run (undefined: one does). */
function notRead(
  key: OptionKey,
  spec: ExperimentOption,
  c: ExperimentConfig,
): string | undefined {
  const by = spec.readBy;
  if (!by) return undefined;
  const models = modelList(c);
  const readers = by.contestants
    ? contestants().filter((k) => readsOption(k, key)).map((k) => k.kind)
    : [];
  const judge = c.judge === "auto" || c.judge === "self" ? c.judge : "run";
  if (
    readers.some((k) => models.includes(k)) || by.judges?.includes(judge)
  ) return undefined;
  const judges = by.judges ?? [];
  const who = [
    ...(readers.length
      ? [`the ${listOf(readers)} contestant${readers.length > 1 ? "s" : ""}`]
      : by.contestants
      ? ["no registered contestant"]
      : []),
    ...(judges.length ? [`the ${listOf(judges)} judge`] : []),
  ];
  const asked = [
    ...(by.contestants ? [`--models is ${c.models}`] : []),
    ...(judges.length ? [`--judge is ${c.judge}`] : []),
  ];
  const fix = [
    ...(readers.length
      ? [`add ${readers.length > 1 ? "one of them" : readers[0]} to --models`]
      : []),
    ...(judges.length ? [`use --judge ${judges.join(" or ")}`] : []),
    "leave it out",
  ];
  return `is read by ${who.join(" and ")} only, and ${
    asked.join(" and ")
  }: it would be recorded and never used; ${fix.join(", or ")}`;
}

/** `a`, `a and b`, `a, b and c`. */
function listOf(items: readonly string[]): string {
  return items.length < 2
    ? items.join("")
    : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

/**
 * Check a whole configuration: every option in its range, the rules between
 * options, and the contestants; the model list comes back in training order.
 *
 * @param values Every option's value (strings are converted).
 * @param options `unread`: refuse a value nothing in the run reads
 *   ({@linkcode unreadOption}) unless `values` resume a run (default:
 *   keep it, as a run's own record).
 * @returns The configuration.
 * @throws {ConfigError} On the first problem.
 *
 * @example
 * ```ts
 * import { checkConfig, ConfigError, PRESETS } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(checkConfig({ ...PRESETS.micro, models: "d3pm,ar" }).models, "ar,d3pm");
 * const { steps: _, ...noSteps } = PRESETS.micro;
 * assertThrows(() => checkConfig(noSteps), ConfigError, "Option --steps needs a value");
 * ```
 */
export function checkConfig(
  values: Readonly<Record<string, unknown>>,
  options: { unread?: boolean } = {},
): ExperimentConfig {
  return asConfigError(() => {
    const c: Record<string, unknown> = {};
    for (const key of Object.keys(OPTIONS) as OptionKey[]) {
      c[key] = convertOption(key, OPTIONS[key], values[key]);
    }
    const config = c as ExperimentConfig;
    config.models = modelList(config).join(",");
    // Before the rules between options: a value nothing reads is refused
    // as such, not by a rule about what it would have done.
    // A resume continues what its run recorded (its folder's check refuses
    // a resume that starts afresh, see RunFolder.check).
    const unread = options.unread && !config.resume
      ? unreadOption(config)
      : undefined;
    if (unread) throw new ConfigError(unread);
    for (const rule of RULES) {
      const message = rule.check(config);
      if (message) throw new ConfigError(message);
    }
    // A contestant the fused engines cannot run (its registry entry says
    // why): refused with --engine cpu or webgpu before anything starts (an
    // explicit engine is every model's; under auto it alone falls back to
    // tfjs, see chooseRunEngine).
    const only = contestants().find((k) =>
      k.tfjsOnly && modelList(config).includes(k.kind)
    );
    if (only && (config.engine === "cpu" || config.engine === "webgpu")) {
      throw new ConfigError(
        `the ${only.kind} contestant runs on tfjs only: ${only.tfjsOnly}, not --engine ${config.engine}; use --engine auto (then ${only.kind} alone trains on tfjs) or tfjs`,
      );
    }
    if (config.judge === "self" && !modelList(config).includes("ar")) {
      throw new ConfigError(
        `Option --judge self needs the AR model in --models (got "${config.models}"): use --judge auto, or add ar`,
      );
    }
    checkShapes(config);
    return config;
  });
}

/** The model configuration's keys as the options that set them. */
const MODEL_FLAGS: Readonly<Record<string, string>> = {
  contextLength: "--block-length",
  nLayer: "--n-layer",
  nHead: "--n-head",
  dModel: "--d-model",
  dMlp: "--d-mlp",
  alibiMode: "--alibi-mode",
};

/**
 * Every contestant's network, built from the options and checked by the
 * transformer's own rules (`validateConfig`), before anything is written:
 * a rule the options do not repeat (`--positions rotary` needs an even
 * head size) was found only after the run folder had been written. Its
 * message names the options, not the model's camelCase keys.
 */
function checkShapes(c: ExperimentConfig): void {
  const vocab = c.tokenizer === "bpe" ? c.vocabSize : 1024;
  for (const kind of modelList(c)) {
    const contestant = contestants().find((k) => k.kind === kind)!;
    try {
      validateConfig(contestant.modelConfig(c, vocab));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      const why = e.message.replace(/^Invalid model config: /, "").replace(
        /\b(contextLength|nLayer|nHead|dModel|dMlp|alibiMode)\b/g,
        (key) => MODEL_FLAGS[key],
      );
      throw new ConfigError(
        `The options give the ${kind} model a shape the Transformer refuses: ${why}`,
      );
    }
  }
}

/** Run `f`; a usage error of one option becomes a {@linkcode ConfigError}. */
function asConfigError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof UsageError) throw new ConfigError(e.message);
    throw e;
  }
}

/**
 * The contestants of `--models`, in training order (the registry's).
 *
 * @param c The configuration.
 * @returns Their kinds.
 * @throws {ConfigError} For an unknown or repeated name, or an empty list.
 *
 * @example
 * ```ts
 * import { modelList, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(modelList(resolveConfig()), ["ar", "d3pm"]);
 * assertEquals(resolveConfig({ models: "mlm, ar,d3pm" }).models, "ar,d3pm,mlm");
 * assertThrows(() => resolveConfig({ models: "ar,bert" }), Error, "distinct models from ar, d3pm, mlm");
 * ```
 */
export function modelList(c: Pick<ExperimentConfig, "models">): string[] {
  const names = c.models.split(",").map((s) => s.trim());
  const accepted = contestants().map((k) => k.kind);
  const bad = names.find((n) => !accepted.includes(n));
  if (bad !== undefined || names.length !== new Set(names).size) {
    throw new ConfigError(
      `Option --models must be a comma-separated list of distinct models from ${
        accepted.join(", ")
      }, got "${c.models}"`,
    );
  }
  return accepted.filter((k) => names.includes(k));
}

/**
 * The differences that forbid a resume, as one line, or "" when none.
 * Keys in {@linkcode RESUMABLE_KEYS} are ignored, and those in
 * {@linkcode VERIFIED_KEYS} when the run has the record that verifies them
 * (`verified`: its `data.json`); a key the saved configuration lacks reads
 * as its {@linkcode ADDED_KEYS} value.
 *
 * @param saved The configuration the run started with.
 * @param now The configuration asked for now.
 * @param options `verified`: the run's record will verify the
 *   {@linkcode VERIFIED_KEYS} (its `data.json` exists).
 * @returns One `--key is X but the run used Y` clause per difference,
 * joined by `; `, or the empty string.
 *
 * @example
 * ```ts
 * import { configDiff, resolveConfig } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const saved = resolveConfig({ preset: "micro" });
 * assertEquals(configDiff(saved, { ...saved, out: "elsewhere" }), "");
 * assertEquals(
 *   configDiff(saved, { ...saved, steps: 100, tokenizer: "gpt2" }),
 *   '--tokenizer is "gpt2" but the run used "byte"; --steps is 100 but the run used 800',
 * );
 * // An option the run had and this version lacks (a removed option).
 * assertEquals(
 *   configDiff({ ...saved, gone: "" } as never, saved),
 *   '--gone is (none) but the run used ""',
 * );
 * ```
 */
export function configDiff(
  saved: Readonly<Partial<ExperimentConfig>>,
  now: ExperimentConfig,
  options: { verified?: boolean } = {},
): string {
  return configDifferences(saved, now, {
    defaults: ADDED_KEYS,
    ignore: ignoredKeys(options.verified ?? false),
  }).map((d) =>
    `--${flagOf(d.key)} is ${
      JSON.stringify(d.now) ?? "(none)"
    } but the run used ${JSON.stringify(d.saved) ?? "(none)"}`
  ).join("; ");
}

/**
 * The configuration as it enters checkpoints: without the keys that may
 * change on resume, so a checkpoint only matches the training it belongs to.
 *
 * @param config The resolved configuration.
 * @returns A copy without {@linkcode RESUMABLE_KEYS}.
 *
 * @example
 * ```ts
 * import { resolveConfig, trainingFingerprint } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * const first = resolveConfig({ preset: "micro", out: "runs/a" });
 * const resumed = resolveConfig({ preset: "micro", out: "runs/b", resume: true });
 * assertEquals(trainingFingerprint(first), trainingFingerprint(resumed));
 * assertEquals("out" in trainingFingerprint(first), false);
 * assertEquals(trainingFingerprint(first).steps, 800);
 * ```
 */
export function trainingFingerprint(
  config: ExperimentConfig,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const k of RESUMABLE_KEYS) delete out[k];
  return out;
}
