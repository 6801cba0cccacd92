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
import { ConfigError } from "./options.ts";

const REGISTRY: Contestant[] = [AR, D3PM, MLM, BD3];

/**
 * Add a contestant (after those registered before it, in training order).
 *
 * @typeParam P Its process.
 * @param contestant The contestant.
 * @throws {RangeError} When its kind or seed stream is taken, or its kind
 *   is not a plain name (it names a folder).
 *
 * @example
 * ```ts
 * import { AR, registerContestant } from "@d3pm/experiment";
 * import { assertThrows } from "@std/assert";
 * assertThrows(() => registerContestant(AR), RangeError, 'a contestant "ar" is already registered');
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
  const stream = REGISTRY.find((r) => r.seedStream === c.seedStream);
  if (stream || !(Number.isInteger(c.seedStream) && c.seedStream > 0)) {
    throw new RangeError(
      `Cannot register contestant "${c.kind}": its seed stream must be a positive integer no other contestant uses (${
        stream ? `"${stream.kind}" has ${c.seedStream}` : `got ${c.seedStream}`
      })`,
    );
  }
  REGISTRY.push(c);
}

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
