/**
 * The registry of contestants: the built-in AR, D3PM, MLM and BD3, and any
 * registered since, in training order. `--models`, the report, the tools and
 * run loading all look contestants up here.
 *
 * @module
 */
import type {
  Contestant,
  ContestantLabel,
  ContestantProcess,
} from "./contestant.ts";
import { AR } from "./contestants/ar.ts";
import { D3PM } from "./contestants/d3pm.ts";
import { MLM } from "./contestants/mlm.ts";
import { BD3 } from "./contestants/bd3.ts";
import { ConfigError, type OptionKey } from "./options.ts";

const REGISTRY: Contestant[] = [];

/**
 * The most seed streams a contestant may use: the initial weights of seed
 * `s` come from seed `1000 s + seedStream` (see `weightSeed`), so a stream
 * of 1000 or more would be another seed's stream of another contestant.
 */
const STREAMS = 1000;

/**
 * The stream the judge's own weights seed (7919 = 1000 · 7 + 919) falls
 * on: a contestant of that stream would start, at seed 7, from the judge's
 * draw.
 */
const JUDGE_STREAM = 919;

/**
 * Add a contestant (after those registered before it, in training order).
 *
 * @typeParam P Its process.
 * @param contestant The contestant.
 * @throws {RangeError} When its kind or seed stream is taken, its seed
 *   stream is not an integer in 1..999 (or is 919, the judge's), or its kind
 *   is not a plain name (it names a folder).
 *
 * @example
 * ```ts
 * import { AR, registerContestant } from "@d3pm/experiment";
 * import { assertThrows } from "@std/assert";
 * assertThrows(() => registerContestant(AR), RangeError, 'a contestant "ar" is already registered');
 * // Seed 0's weights of stream 1001 would be seed 1's of AR (stream 1).
 * assertThrows(
 *   () => registerContestant({ ...AR, kind: "late", seedStream: 1001 }),
 *   RangeError,
 *   "its seed stream must be an integer in 1..999",
 * );
 * ```
 */
export function registerContestant<P extends ContestantProcess>(
  contestant: Contestant<P>,
): void {
  const c = contestant as unknown as Contestant;
  if (!/^[a-z][a-z0-9-]*$/.test(c.kind)) {
    throw new RangeError(
      `Cannot register contestant "${c.kind}": a kind is lower-case letters, digits and dashes, starting with a letter`,
    );
  }
  if (REGISTRY.some((r) => r.kind === c.kind)) {
    throw new RangeError(
      `Cannot register: a contestant "${c.kind}" is already registered`,
    );
  }
  const s = c.seedStream;
  if (!(Number.isInteger(s) && s > 0 && s < STREAMS)) {
    throw new RangeError(
      `Cannot register contestant "${c.kind}": its seed stream must be an integer in 1..${
        STREAMS - 1
      } (weights seed = ${STREAMS} × seed + stream, so a larger one is another seed's stream), got ${s}`,
    );
  }
  if (s === JUDGE_STREAM) {
    throw new RangeError(
      `Cannot register contestant "${c.kind}": seed stream ${JUDGE_STREAM} is the judge's (its weights seed 7919 = ${STREAMS} × 7 + ${JUDGE_STREAM}); choose another`,
    );
  }
  const taken = REGISTRY.find((r) => r.seedStream === s);
  if (taken) {
    throw new RangeError(
      `Cannot register contestant "${c.kind}": its seed stream must be one no other contestant uses ("${taken.kind}" has ${s})`,
    );
  }
  REGISTRY.push(c);
}

// The built-in ones, through the same checks as any other.
for (const c of [AR, D3PM, MLM, BD3] as Contestant[]) registerContestant(c);

/**
 * Every registered contestant, in training order.
 *
 * @returns The contestants.
 *
 * @example
 * ```ts
 * import { contestants } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(contestants().slice(0, 3).map((c) => c.kind), ["ar", "d3pm", "mlm"]);
 * ```
 */
export function contestants(): readonly Contestant[] {
  return [...REGISTRY];
}

/**
 * The registered contestants for a `--help` line: their kinds, then what
 * those that say (`Contestant.help`) are.
 *
 * @param which Which to list (default: all).
 * @returns E.g. `ar, d3pm, mlm, bd3 (mlm: the BERT objective …; bd3: …)`.
 *
 * @example
 * ```ts
 * import { describeContestants } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(describeContestants((c) => c.network === "causal"), "ar");
 * assertEquals(
 *   describeContestants((c) => c.kind === "ar" || c.kind === "mlm"),
 *   "ar, mlm (mlm: the BERT objective on the D3PM's backbone)",
 * );
 * ```
 */
export function describeContestants(
  which: (c: Contestant) => boolean = () => true,
): string {
  const listed = REGISTRY.filter(which);
  const said = listed.filter((c) => c.help).map((c) => `${c.kind}: ${c.help}`);
  return `${listed.map((c) => c.kind).join(", ")}${
    said.length ? ` (${said.join("; ")})` : ""
  }`;
}

/**
 * The contestant of `kind`.
 *
 * @param kind Its name.
 * @returns The contestant.
 * @throws {ConfigError} When none is registered under that name.
 *
 * @example
 * ```ts
 * import { contestantOf } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(contestantOf("d3pm").label.short, "D3PM");
 * ```
 */
export function contestantOf(kind: string): Contestant {
  const c = REGISTRY.find((r) => r.kind === kind);
  if (!c) {
    throw new ConfigError(
      `Unknown contestant "${kind}": registered are ${
        REGISTRY.map((r) => r.kind).join(", ")
      }`,
    );
  }
  return c;
}

/**
 * The labels of `kind`: its contestant's, or the kind itself for one no
 * longer registered (a run folder read by another program).
 *
 * @param kind The contestant's name.
 * @returns Its labels.
 *
 * @example
 * ```ts
 * import { labelOf } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(labelOf("ar").title, "AR (causal)");
 * assertEquals(labelOf("gone"), { short: "gone", title: "gone" });
 * ```
 */
export function labelOf(kind: string): ContestantLabel {
  return REGISTRY.find((r) => r.kind === kind)?.label ??
    { short: kind, title: kind };
}

/**
 * Whether `contestant` reads the option `key` (one the option table marks
 * `readBy.contestants`): `initFrom` when it `startsFromWeights`,
 * `annealSteps` when it `annealsAttention`, any other when its `reads`
 * lists it — or when it declares no `reads` (a contestant that does not say
 * is taken to read them all: nothing it might read is refused).
 *
 * @param contestant The contestant.
 * @param key The option.
 * @returns True when its training or evaluation reads the option.
 *
 * @example
 * ```ts
 * import { AR, D3PM, MLM, readsOption } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals(readsOption(AR, "tMin"), false);
 * assertEquals(readsOption(D3PM, "tMin"), true);
 * assertEquals(readsOption(MLM, "initFrom"), false); // not startsFromWeights
 * assertEquals(readsOption({ ...MLM, reads: undefined }, "tMin"), true); // says nothing
 * ```
 */
export function readsOption(contestant: Contestant, key: OptionKey): boolean {
  if (key === "initFrom") return contestant.startsFromWeights === true;
  if (key === "annealSteps") return contestant.annealsAttention === true;
  return contestant.reads?.includes(key) ?? true;
}

/**
 * Whether a contestant generates in steps — by unmasking, or block by block
 * — so that its sampler takes a number of steps (`--steps`, the run's
 * `--gen-steps`); one that draws left to right takes none.
 *
 * @param contestant The contestant (its `unmasking` and `blockUnmasking`).
 * @returns True when it declares either.
 *
 * @example
 * ```ts
 * import { AR, BD3, D3PM, generatesInSteps, MLM } from "@d3pm/experiment";
 * import { assertEquals } from "@std/assert";
 * assertEquals([AR, D3PM, MLM, BD3].map(generatesInSteps), [false, true, true, true]);
 * assertEquals(generatesInSteps({ ...MLM, unmasking: undefined }), false);
 * ```
 */
export function generatesInSteps(
  contestant: Pick<Contestant, "unmasking" | "blockUnmasking">,
): boolean {
  return contestant.unmasking !== undefined ||
    contestant.blockUnmasking !== undefined;
}
