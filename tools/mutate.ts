/**
 * Mutation testing for one source file: plant one near-miss bug at a time,
 * run a test command, and report whether the tests caught it ("killed") or
 * passed anyway ("survived"). The file is always restored: a backup is
 * written next to it first (`FILE.mutate-orig`), the original is written back
 * after every mutant, in a `finally`, and on SIGINT/SIGTERM; a run that finds
 * a backup left by a killed run refuses to start until `--restore`.
 *
 *   deno run -A tools/mutate.ts --file diffusion/schedule.ts \
 *     --max 40 -- deno test -A --no-check diffusion/schedule_test.ts
 *
 * Operators (`--ops`, default the first five), each a near miss, only in code
 * (never in comments, strings, templates or regular expressions):
 *
 * - `arith`: binary `+`↔`-`, `*`↔`/` and `+=`↔`-=`, `*=`↔`/=` (binary means
 *   spaced as `deno fmt` writes it: ` + `; the `*` of `import * as` and
 *   `export * from` is left alone).
 * - `compare`: `<`↔`<=`, `>`↔`>=` (spaced, so never a generic).
 * - `literal`: integer literal n → n + 1 and n − 1 (n > 0); a non-integer
 *   decimal literal x → x·1.1 (`0.5` → `0.55`, `1e-3` → `0.0011`).
 * - `unary`: a unary minus dropped (`-x` → `x`).
 * - `math`: `Math.max`↔`Math.min`, `Math.floor`↔`Math.ceil`,
 *   `Math.log`↔`Math.log1p`, `Math.exp`↔`Math.expm1`, and tfjs's
 *   `.add(`↔`.sub(`, `.mul(`↔`.div(`, `tf.maximum`↔`tf.minimum`,
 *   `.log()`↔`.log1p()`.
 * - `equality` (opt-in): `===`↔`!==`, `==`↔`!=` (spaced).
 * - `logic` (opt-in): `&&`↔`||` (spaced), and a unary `!` dropped (`!x` →
 *   `x`; not the non-null `x!`).
 *
 * Prints one JSON line per mutant, `{file, line, col, op, mutant, killed,
 * timeout, ms}` (a timeout counts as killed), then a summary line
 * `{summary: true, file, planted, killed, survived, timeouts, ms}`. Exit 0
 * whatever survived (2 on bad input or when the tests fail unmutated).
 *
 * @module
 */
import { parseCommandLine, usageText } from "@d3pm/cli";
import { pathExists } from "@d3pm/core";

/**
 * Operator classes, see the module doc.
 *
 * @example
 * ```ts
 * import { DEFAULT_OPS, OPS } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(OPS.filter((op) => !DEFAULT_OPS.includes(op)), ["equality", "logic"]);
 * ```
 */
export const OPS = [
  "arith",
  "compare",
  "literal",
  "unary",
  "math",
  "equality",
  "logic",
] as const;
/** One operator class. */
export type Op = typeof OPS[number];
/**
 * The classes planted when `--ops` is not given: the first five. `equality`
 * and `logic` came later and are opt-in, so a file's default candidates (and
 * so the mutants `--max N` spreads over them) stay those of earlier passes.
 *
 * @example
 * ```ts
 * import { DEFAULT_OPS } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(DEFAULT_OPS, ["arith", "compare", "literal", "unary", "math"]);
 * ```
 */
export const DEFAULT_OPS: readonly Op[] = [
  "arith",
  "compare",
  "literal",
  "unary",
  "math",
];

/** One planted near miss: replace `from` at `index` by `to`. */
export interface Mutant {
  /** Offset into the source. */
  index: number;
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  col: number;
  /** Operator class. */
  op: Op;
  /** Text replaced. */
  from: string;
  /** Replacement. */
  to: string;
}

/**
 * Which characters of a TypeScript source are code: not in a comment, a
 * string, a template literal (its `${…}` substitutions included) or a regular
 * expression. A small lexer: line and block comments, quoted strings, template
 * text, a stack of open braces (so a `}` that closes a `${` resumes the
 * template's text, and templates nest), and regular expression literals,
 * told from division by the previous significant token (a `/` after a value —
 * a name, a number, a string, `)` or `]` — divides; after anything else, or
 * after a keyword such as `return`, it starts a regular expression). Inside a
 * substitution the same lexer runs, so a comment, a string or a regular
 * expression there cannot throw the template's end out of step.
 *
 * @param src The source.
 * @returns `true` at each code position.
 *
 * @example
 * ```ts
 * import { codeMask } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * const src = "a = `${f(/'/g) // it's\n}` / b; // c";
 * const mask = codeMask(src);
 * const shown = [...src].map((c, k) => mask[k] ? c : "_").join("");
 * assertEquals(shown, "a = _____________________ / b; ____");
 * ```
 */
export function codeMask(src: string): boolean[] {
  const n = src.length;
  const mask = new Array<boolean>(n).fill(false);
  // One entry per open `{`: true where it is a template's `${`.
  const braces: boolean[] = [];
  let inTemplate = 0; // how many of `braces` are `${`
  let regexOk = true; // whether a `/` here starts a regular expression
  let i = 0;
  while (i < n) {
    const c = src[i], d = src[i + 1];
    let end = i + 1;
    if (c === "/" && d === "/") {
      end = src.indexOf("\n", i);
      if (end < 0) end = n;
    } else if (c === "/" && d === "*") {
      end = src.indexOf("*/", i + 2);
      end = end < 0 ? n : end + 2;
    } else if (c === '"' || c === "'") {
      end = skipString(src, i);
      regexOk = false;
    } else if (c === "`" || (c === "}" && braces.at(-1) === true)) {
      // Template text: from a backtick, or from the `}` that closes a `${`.
      if (c === "}") braces.pop(), inTemplate--;
      const t = skipTemplateText(src, i + 1);
      end = t.end;
      if (t.substitution) braces.push(true), inTemplate++;
      regexOk = t.substitution;
    } else if (c === "/" && regexOk) {
      end = skipRegex(src, i);
      regexOk = false;
    } else if (/[\w$]/.test(c)) {
      while (end < n && /[\w$]/.test(src[end])) end++;
      // A keyword before `/` starts a regex; a property name never does.
      regexOk = src[i - 1] !== "." && EXPR_KEYWORDS.has(src.slice(i, end));
      if (inTemplate === 0) mask.fill(true, i, end);
    } else {
      if (c === "{") braces.push(false);
      else if (c === "}") braces.pop();
      if (!/\s/.test(c)) regexOk = c !== ")" && c !== "]" && c !== "}";
      if (inTemplate === 0) mask[i] = true;
    }
    i = end;
  }
  return mask;
}

/** Keywords after which an expression (so a regular expression) starts. */
const EXPR_KEYWORDS = new Set([
  "return",
  "typeof",
  "instanceof",
  "case",
  "in",
  "of",
  "void",
  "throw",
  "new",
  "delete",
  "yield",
  "await",
  "else",
  "do",
]);

/** The index after the quoted string starting at `start` (or its line's end). */
function skipString(src: string, start: number): number {
  const q = src[start];
  let i = start + 1;
  while (i < src.length && src[i] !== q && src[i] !== "\n") {
    i += src[i] === "\\" ? 2 : 1;
  }
  return Math.min(i + 1, src.length);
}

/**
 * Template text from `start` to its closing backtick or to a `${`: the index
 * after it, and whether it was a `${`.
 */
function skipTemplateText(
  src: string,
  start: number,
): { end: number; substitution: boolean } {
  let i = start;
  while (i < src.length) {
    const c = src[i];
    if (c === "\\") i += 2;
    else if (c === "`") return { end: i + 1, substitution: false };
    else if (c === "$" && src[i + 1] === "{") {
      return { end: i + 2, substitution: true };
    } else i++;
  }
  return { end: src.length, substitution: false };
}

/** The index after the regular expression literal (and flags) at `start`. */
function skipRegex(src: string, start: number): number {
  let i = start + 1;
  let inClass = false;
  while (i < src.length && src[i] !== "\n") {
    const c = src[i];
    if (c === "\\") i += 2;
    else if (c === "[") inClass = true, i++;
    else if (c === "]") inClass = false, i++;
    else if (c === "/" && !inClass) break;
    else i++;
  }
  i++;
  while (i < src.length && /[\w$]/.test(src[i])) i++;
  return Math.min(i, src.length);
}

const SWAPS: [Op, RegExp, Record<string, string>][] = [
  ["arith", / (\+|-|\*|\/) (?!=)/g, { "+": "-", "-": "+", "*": "/", "/": "*" }],
  ["arith", / (\+=|-=|\*=|\/=) /g, {
    "+=": "-=",
    "-=": "+=",
    "*=": "/=",
    "/=": "*=",
  }],
  ["compare", / (<=|>=|<|>) /g, { "<": "<=", "<=": "<", ">": ">=", ">=": ">" }],
  ["math", /(Math\.(?:max|min|floor|ceil|log1p|log|expm1|exp))\(/g, {
    "Math.max": "Math.min",
    "Math.min": "Math.max",
    "Math.floor": "Math.ceil",
    "Math.ceil": "Math.floor",
    "Math.log": "Math.log1p",
    "Math.log1p": "Math.log",
    "Math.exp": "Math.expm1",
    "Math.expm1": "Math.exp",
  }],
  ["math", /(\.add|\.sub|\.mul|\.div|tf\.maximum|tf\.minimum)\(/g, {
    ".add": ".sub",
    ".sub": ".add",
    ".mul": ".div",
    ".div": ".mul",
    "tf.maximum": "tf.minimum",
    "tf.minimum": "tf.maximum",
  }],
  ["math", /(\.log1p|\.log)\(\)/g, { ".log": ".log1p", ".log1p": ".log" }],
  ["equality", / (===|!==|==|!=) /g, {
    "===": "!==",
    "!==": "===",
    "==": "!=",
    "!=": "==",
  }],
  ["logic", / (&&|\|\|) /g, { "&&": "||", "||": "&&" }],
];

/**
 * Every mutant of a source, in source order.
 *
 * @param src The source.
 * @param ops Operator classes to plant (default {@link DEFAULT_OPS}).
 * @returns The mutants.
 *
 * @example
 * ```ts
 * import { findMutants } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * const ms = findMutants("const y = a + 2; // a + 2\n", ["arith", "literal"]);
 * assertEquals(ms.map((m) => `${m.from}→${m.to}`), ["+→-", "2→3", "2→1"]);
 * // A namespace import or re-export is no product.
 * const ns = findMutants('import * as tf from "t";\nexport * from "u";\nx = a * b;\n', ["arith"]);
 * assertEquals(ns.map((m) => m.line), [3]);
 * ```
 */
export function findMutants(
  src: string,
  ops: readonly Op[] = DEFAULT_OPS,
): Mutant[] {
  const mask = codeMask(src);
  const out: Planted[] = [];
  const inCode = (from: number, len: number) => {
    for (let k = from; k < from + len; k++) if (!mask[k]) return false;
    return true;
  };
  for (const [op, re, map] of SWAPS) {
    if (!ops.includes(op)) continue;
    for (const m of src.matchAll(re)) {
      const text = m[1];
      const index = m.index! + m[0].indexOf(text);
      // `import * as x` and `export * from`: a namespace, not a product.
      if (
        text === "*" &&
        /(?:^|[^\w$])(?:import|export)$/.test(
          src.slice(Math.max(0, m.index! - 7), m.index!),
        )
      ) {
        continue;
      }
      if (inCode(m.index!, m[0].length)) {
        out.push({ index, op, from: text, to: map[text] });
      }
    }
  }
  if (ops.includes("literal")) out.push(...literalMutants(src, inCode));
  if (ops.includes("unary")) {
    // A minus after an operator, bracket, comma or keyword, before an operand.
    const re = /(?:[=(,[?:!&|]|return|=>) ?(-)(?=[\w$(.])/g;
    for (const m of src.matchAll(re)) {
      const index = m.index! + m[0].length - 1;
      if (inCode(index, 1) && src[index + 1] !== "-") {
        out.push({ index, op: "unary", from: "-", to: "" });
      }
    }
  }
  if (ops.includes("logic")) out.push(...notMutants(src, inCode));
  out.sort((a, b) => a.index - b.index);
  const lineStarts = [0];
  for (let k = 0; k < src.length; k++) {
    if (src[k] === "\n") lineStarts.push(k + 1);
  }
  return out.map((m) => {
    let lo = 0, hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= m.index) lo = mid;
      else hi = mid - 1;
    }
    return { ...m, line: lo + 1, col: m.index - lineStarts[lo] + 1 };
  });
}

type Planted = Omit<Mutant, "line" | "col">;

/** `literal` mutants: an integer n → n + 1 and n − 1 (n > 0), a decimal x → 1.1·x. */
function literalMutants(
  src: string,
  inCode: (from: number, len: number) => boolean,
): Planted[] {
  const out: Planted[] = [];
  const num =
    /(?<![\w$.])(\d+\.\d+(?:e[+-]?\d+)?|\d+e[+-]?\d+|\d+)(?![\w$.])/gi;
  for (const m of src.matchAll(num)) {
    const text = m[1];
    if (!inCode(m.index!, text.length)) continue;
    if (/^\d+$/.test(text)) {
      const v = Number(text);
      out.push({
        index: m.index!,
        op: "literal",
        from: text,
        to: `${v + 1}`,
      });
      if (v > 0) {
        out.push({
          index: m.index!,
          op: "literal",
          from: text,
          to: `${v - 1}`,
        });
      }
    } else {
      const to = `${Number((Number(text) * 1.1).toPrecision(6))}`;
      out.push({ index: m.index!, op: "literal", from: text, to });
    }
  }
  return out;
}

/**
 * `logic`'s unary `!` dropped: a `!` before an operand (not `!=`), after an
 * operator, a bracket or a keyword — not TypeScript's non-null `x!`, which
 * follows a value.
 */
function notMutants(
  src: string,
  inCode: (from: number, len: number) => boolean,
): Planted[] {
  const out: Planted[] = [];
  for (const m of src.matchAll(/!(?=[\w$(![])/g)) {
    const index = m.index!;
    if (!inCode(index, 1)) continue;
    let j = index - 1;
    while (j >= 0 && /\s/.test(src[j])) j--;
    if (j >= 0 && /[\w$)\]]/.test(src[j])) {
      const word = /[\w$]+$/.exec(src.slice(Math.max(0, j - 11), j + 1));
      if (!word || !EXPR_KEYWORDS.has(word[0])) continue;
    }
    out.push({ index, op: "logic", from: "!", to: "" });
  }
  return out;
}

/**
 * The source with one mutant planted.
 *
 * @param src The source.
 * @param m The mutant.
 * @returns The mutated source.
 *
 * @example
 * ```ts
 * import { applyMutant, findMutants } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * const src = "ok = a === b;";
 * assertEquals(applyMutant(src, findMutants(src, ["equality"])[0]), "ok = a !== b;");
 * ```
 */
export function applyMutant(src: string, m: Mutant): string {
  if (src.slice(m.index, m.index + m.from.length) !== m.from) {
    throw new Error(`mutant at ${m.line}:${m.col} does not match the source`);
  }
  return src.slice(0, m.index) + m.to + src.slice(m.index + m.from.length);
}

/**
 * At most `max` of `items`, evenly spread (all of them when there are fewer).
 *
 * @param items The items.
 * @param max How many to keep.
 * @returns The kept items, in order.
 *
 * @example
 * ```ts
 * import { spread } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(spread([0, 1, 2, 3, 4, 5], 3), [0, 2, 4]);
 * assertEquals(spread([0, 1], 3), [0, 1]);
 * ```
 */
export function spread<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return [...items];
  return Array.from(
    { length: max },
    (_, k) => items[Math.floor((k * items.length) / max)],
  );
}

/** What a test run gave. */
export interface Outcome {
  /** Whether the tests passed. */
  passed: boolean;
  /** Whether it was stopped for running past the timeout. */
  timeout: boolean;
}

/** Runs the tests once (against whatever the file holds now). */
export type Runner = (timeoutMs: number) => Promise<Outcome>;

/** One mutant's result line. */
export interface Result {
  /** The mutated file. */
  file: string;
  /** 1-based line. */
  line: number;
  /** 1-based column. */
  col: number;
  /** Operator class. */
  op: Op;
  /** `FROM → TO` (`(removed)` for a dropped `-` or `!`). */
  mutant: string;
  /** Whether the tests failed (a timeout counts). */
  killed: boolean;
  /** Whether the tests ran past the timeout. */
  timeout: boolean;
  /** How long the test run took. */
  ms: number;
}

/**
 * The path of the backup written before any mutant is planted.
 *
 * @example
 * ```ts
 * import { backupPath } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(backupPath("train/ema.ts"), "train/ema.ts.mutate-orig");
 * ```
 */
export const backupPath = (file: string): string => `${file}.mutate-orig`;

/**
 * Plant each mutant in `file` in turn and run the tests; the file is written
 * back after each and, whatever happens, in a `finally` (from the backup
 * written first, which is then removed).
 *
 * @param file The source file.
 * @param mutants The mutants (of its current text).
 * @param run Runs the tests.
 * @param timeoutMs Per-mutant timeout.
 * @param onResult Called with each result.
 * @param stop Once aborted, no further mutant is planted.
 * @returns The results.
 *
 * @example
 * ```ts
 * import { findMutants, mutateFile } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * const file = await Deno.makeTempFile({ suffix: ".ts" });
 * const src = "export const n = a + b;\n";
 * await Deno.writeTextFile(file, src);
 * // A "test" that passes while the file still adds.
 * const run = async () => ({
 *   passed: (await Deno.readTextFile(file)).includes("a + b"),
 *   timeout: false,
 * });
 * const rs = await mutateFile(file, findMutants(src, ["arith"]), run, 1000);
 * assertEquals(rs.map((r) => [r.mutant, r.killed]), [["+ → -", true]]);
 * assertEquals(await Deno.readTextFile(file), src);
 * await Deno.remove(file);
 * ```
 */
export async function mutateFile(
  file: string,
  mutants: readonly Mutant[],
  run: Runner,
  timeoutMs: number,
  onResult: (r: Result) => void = () => {},
  stop?: AbortSignal,
): Promise<Result[]> {
  const original = await Deno.readTextFile(file);
  const backup = backupPath(file);
  await Deno.writeTextFile(backup, original, { createNew: true });
  const results: Result[] = [];
  try {
    for (const m of mutants) {
      if (stop?.aborted) break;
      await Deno.writeTextFile(file, applyMutant(original, m));
      const t0 = performance.now();
      try {
        const o = await run(timeoutMs);
        const r: Result = {
          file,
          line: m.line,
          col: m.col,
          op: m.op,
          mutant: `${m.from} → ${m.to === "" ? "(removed)" : m.to}`,
          killed: !o.passed,
          timeout: o.timeout,
          ms: Math.round(performance.now() - t0),
        };
        results.push(r);
        onResult(r);
      } finally {
        await Deno.writeTextFile(file, original);
      }
    }
  } finally {
    await restore(file);
  }
  return results;
}

/**
 * Write the backup back over `file` and remove it (no-op without a backup).
 *
 * @param file The source file.
 * @returns Whether a backup was restored.
 *
 * @example
 * ```ts
 * import { backupPath, restore } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * const file = await Deno.makeTempFile();
 * await Deno.writeTextFile(file, "mutated");
 * await Deno.writeTextFile(backupPath(file), "original");
 * assertEquals(await restore(file), true);
 * assertEquals(await Deno.readTextFile(file), "original");
 * assertEquals(await restore(file), false); // the backup is gone
 * await Deno.remove(file);
 * ```
 */
export async function restore(file: string): Promise<boolean> {
  const backup = backupPath(file);
  let text: string;
  try {
    text = await Deno.readTextFile(backup);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  await Deno.writeTextFile(file, text);
  if (await Deno.readTextFile(file) !== text) {
    throw new Error(`${file} could not be restored from ${backup}`);
  }
  await Deno.remove(backup);
  return true;
}

/** The running test process, so a signal can stop it. */
let child: Deno.ChildProcess | undefined;

/**
 * A runner that spawns `cmd` in its own process group, its output discarded,
 * and kills the group at the timeout. Each run has a temporary folder of its
 * own (`TMPDIR`), removed after it: tests that a mutant makes fail, or that
 * are killed at the timeout, do not remove theirs.
 *
 * @param cmd Command and arguments.
 * @returns The runner.
 *
 * @example
 * ```ts
 * import { commandRunner } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * const fails = commandRunner([Deno.execPath(), "eval", "Deno.exit(1)"]);
 * assertEquals(await fails(30_000), { passed: false, timeout: false });
 * ```
 */
export function commandRunner(cmd: readonly string[]): Runner {
  return async (timeoutMs) => {
    const tmp = await Deno.makeTempDir({ prefix: "mutate-run-" });
    const p = new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      env: { TMPDIR: tmp },
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    child = p;
    let timeout = false;
    const timer = setTimeout(() => {
      timeout = true;
      killGroup(p);
    }, timeoutMs);
    try {
      const status = await p.status;
      return { passed: status.success && !timeout, timeout };
    } finally {
      clearTimeout(timer);
      child = undefined;
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  };
}

function killGroup(p: Deno.ChildProcess): void {
  try {
    Deno.kill(-p.pid, "SIGKILL");
  } catch {
    try {
      p.kill("SIGKILL");
    } catch { /* already gone */ }
  }
}

/**
 * Parse `a-b,c-d` into inclusive line ranges.
 *
 * @param spec The ranges, e.g. `1-166,200`.
 * @returns `[first, last]` pairs.
 *
 * @example
 * ```ts
 * import { parseLines } from "./mutate.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(parseLines("1-166,200"), [[1, 166], [200, 200]]);
 * ```
 */
export function parseLines(spec: string): [number, number][] {
  return spec.split(",").map((part) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`--lines: expected a-b[,c-d], got "${spec}"`);
    const a = Number(m[1]), b = Number(m[2] ?? m[1]);
    if (a < 1 || b < a) throw new Error(`--lines: bad range "${part}"`);
    return [a, b];
  });
}

/** The options of the tool. */
const OPTIONS = {
  file: {
    kind: "string",
    required: true,
    value: "FILE",
    help: "the source file to mutate",
  },
  max: {
    kind: "integer",
    min: 1,
    default: 50,
    help: "at most N mutants, evenly spread over the candidates",
  },
  lines: {
    kind: "string",
    value: "A-B",
    help: "only mutants on these lines (comma-separated ranges)",
  },
  ops: {
    kind: "string",
    value: "LIST",
    help: `operator classes: ${OPS.join(",")} (default ${
      DEFAULT_OPS.join(",")
    })`,
  },
  timeout: {
    kind: "number",
    above: 0,
    value: "S",
    help: "seconds per mutant (default 3 × the unmutated run, at least 30)",
  },
  list: {
    kind: "boolean",
    default: false,
    help: "print the mutants without running anything",
  },
  restore: {
    kind: "boolean",
    default: false,
    help: "restore FILE from FILE.mutate-orig left by a killed run, and exit",
  },
} as const;

const USAGE = {
  command: "deno run -A tools/mutate.ts",
  synopsis:
    "deno run -A tools/mutate.ts --file FILE [options] -- TEST COMMAND…",
  summary:
    `Plants one near-miss mutant at a time in FILE, runs TEST COMMAND (exit 0 =
the tests passed = the mutant survived), and restores FILE after each, in a
finally and on SIGINT/SIGTERM. Prints JSON lines {file, line, col, op, mutant,
killed, timeout, ms} and a summary line.`,
  options: OPTIONS,
  epilogue: `example:
  deno run -A tools/mutate.ts --file diffusion/schedule.ts --max 40 \\
    -- deno test -A --no-check diffusion/schedule_test.ts`,
};

async function main(argv: string[]): Promise<number> {
  const dash = argv.indexOf("--");
  const own = dash < 0 ? argv : argv.slice(0, dash);
  const cmd = dash < 0 ? [] : argv.slice(dash + 1);
  const line = parseCommandLine(own, OPTIONS, { positionals: true });
  if (line.help) {
    console.log(usageText(USAGE).trimEnd());
    return 0;
  }
  if (line.positionals.length > 0) {
    throw new Error(
      `unexpected argument "${
        line.positionals[0]
      }": put the test command after --`,
    );
  }
  const a = line.values;
  const file = a.file;
  if (a.restore) {
    const done = await restore(file);
    console.error(
      done ? `restored ${file}` : `no ${backupPath(file)}: nothing to restore`,
    );
    return 0;
  }
  const max = a.max;
  const ops = a.ops === undefined ? [...DEFAULT_OPS] : a.ops.split(",");
  for (const op of ops) {
    if (!(OPS as readonly string[]).includes(op)) {
      throw new Error(`--ops: unknown class "${op}" (${OPS.join(", ")})`);
    }
  }
  const timeoutS = a.timeout;
  const ranges = a.lines === undefined ? undefined : parseLines(a.lines);
  let src: string;
  try {
    src = await Deno.readTextFile(file);
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (await pathExists(backupPath(file))) {
    throw new Error(
      `${backupPath(file)} exists (a killed run?): check it, then --restore`,
    );
  }
  const all = findMutants(src, ops as Op[]).filter((m) =>
    !ranges || ranges.some(([x, y]) => m.line >= x && m.line <= y)
  );
  const chosen = spread(all, max);
  if (a.list) {
    for (const m of chosen) {
      console.log(JSON.stringify({
        file,
        line: m.line,
        col: m.col,
        op: m.op,
        mutant: `${m.from} → ${m.to === "" ? "(removed)" : m.to}`,
      }));
    }
    console.error(`${chosen.length} of ${all.length} candidates`);
    return 0;
  }
  if (cmd.length === 0) {
    throw new Error("no test command: give it after -- (see --help)");
  }
  const run = commandRunner(cmd);
  const t0 = performance.now();
  let base: Outcome;
  try {
    base = await run(timeoutS ? timeoutS * 1000 : 600_000);
  } catch (e) {
    throw new Error(`cannot run ${cmd[0]}: ${(e as Error).message}`);
  }
  if (!base.passed) {
    throw new Error(
      `the tests fail with no mutant planted${
        base.timeout ? " (timeout)" : ""
      }: ${cmd.join(" ")}`,
    );
  }
  const baseMs = performance.now() - t0;
  const timeoutMs = timeoutS ? timeoutS * 1000 : Math.max(30_000, 3 * baseMs);
  // A signal stops the run: the test process is killed, no further mutant is
  // planted, and mutateFile's finally restores the file. A second signal
  // restores at once and exits.
  const stop = new AbortController();
  const onSignal = () => {
    if (stop.signal.aborted) {
      restore(file).finally(() => Deno.exit(130));
      return;
    }
    stop.abort();
    if (child) killGroup(child);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let results: Result[];
  try {
    results = await mutateFile(
      file,
      chosen,
      run,
      timeoutMs,
      (r) => console.log(JSON.stringify(r)),
      stop.signal,
    );
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  const killed = results.filter((r) => r.killed).length;
  console.log(JSON.stringify({
    summary: true,
    file,
    candidates: all.length,
    planted: results.length,
    killed,
    survived: results.length - killed,
    timeouts: results.filter((r) => r.timeout).length,
    baselineMs: Math.round(baseMs),
    ms: Math.round(performance.now() - t0),
    ...(stop.signal.aborted ? { interrupted: true } : {}),
  }));
  return stop.signal.aborted ? 130 : 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
