/**
 * The documentation's commands stay true: every `deno task NAME …` quoted in
 * the Markdown files names a task of deno.json, and every flag it passes is
 * one the task accepts, with a value of its kind (a number that parses, one
 * of a choice's values). The options come from the task's own `--help` (one
 * run per task and sub-command, cached), and each value goes through
 * `@d3pm/cli`'s `convertOption`, so the check is the tool's own. Prints
 * `FILE:LINE: deno task … — what is wrong` for each stale command and exits 1
 * when there is one.
 *
 *   deno run -A tools/check_doc_commands.ts            # every tracked *.md
 *   deno run -A tools/check_doc_commands.ts FILE.md…
 *
 * What counts as a command:
 * - in fenced blocks with no language or `sh`, `bash`, `shell`, `console`,
 *   `zsh`: each `deno task` (or `deno@VERSION task`, as in
 *   `npx -y deno@2.9.6 task`) to the end of its line, lines joined at a
 *   trailing `\`, to a `#` comment or a shell operator (`|`, `;`, `&&`, `>`,
 *   `)`…); an env prefix (`D3PM_PEER_PYTHON=… deno task …`) is passed over;
 * - in inline code (one span of single backticks, perhaps over several lines
 *   of a paragraph): the same, from `deno task` to the span's end;
 * - a `deno run … SCRIPT.ts` the same way: checked as the task that runs
 *   SCRIPT.ts (a path that ends in it counts: `/shared/d3pm/examples/…`), or
 *   against SCRIPT.ts's own `--help` when no task runs it and it reads
 *   `@d3pm/cli`; other scripts are counted and not checked.
 *
 * A bare `deno task NAME` names the task: only that it exists is checked. In
 * inline code a flag without its value at the span's end names the flag
 * (`deno task evaluate --gen-samples`); in a code block it is missing its
 * value. `[--seed N]` (an optional part) is checked as if given.
 *
 * Placeholders (not checked, only their flag is): a word in capitals (`RUN`,
 * `DIR`, `N`, `FLAGS`), `<run>`, anything with `…` or `...`, and `$VAR`
 * unless the file assigned `VAR=…` in a fenced block before (then its words
 * are spliced in, as the shell would). A placeholder where a flag would be
 * (`… FLAGS --out DIR`) stands for options and is passed over. `a|b` where a
 * value or a sub-command goes checks each of a, b. `deno task bench:*` (a
 * pattern) is skipped.
 *
 * What a task accepts: a task whose script is `deno run … FILE.ts` that
 * reads `@d3pm/cli` (`readCommandLine`, `parseCommandLine` or `--help`) is
 * asked `deno task NAME --help` (then `--help all` when that help names it:
 * a short help of the common options); the option lines, under `Options:`
 * or each group's `HEADING options:`, give each flag's kind (no
 * value: boolean; `N`: integer; `X`: number; `a|b` or `: one of a, b`: a
 * choice; else a string). Bounds (`min`, `max`) do not show in `--help` and
 * are not checked. Positionals: `sweep` takes a verb from its synopsis
 * (`plan|run|status`) and one SPEC.json or DIR; `study` a study's name,
 * whose options come from `deno task study NAME --help`; `report` folders;
 * every other task none. Other tasks (`ok`, `test`, the bash ones) are
 * checked to exist; arguments given to one are reported as unchecked.
 *
 * With no files named (the whole repository), the commands each task's
 * `--help` shows on lines of their own (`  deno task report --merge …`, its
 * examples) are checked too, as `deno task NAME --help:LINE`; `[options]`
 * there stands for options. `tests/testdata/` (planted stale commands) is
 * left out of the default set.
 *
 * @module
 */
import { convertOption, keyOf, type OptionSpec, UsageError } from "@d3pm/cli";

/** One `deno task …` command quoted in a Markdown file. */
export interface DocCommand {
  /** The file, as given. */
  file: string;
  /** The 1-based line where `deno task` stands. */
  line: number;
  /** The command as quoted, on one line. */
  text: string;
  /** The task's name, or the script of `deno run … SCRIPT.ts`. */
  task: string;
  /** A `deno run` of a script, not a task. */
  script: boolean;
  /** The words after the task's name, variables spliced in. */
  args: string[];
  /** Quoted in inline code (a trailing flag without a value names it). */
  inline: boolean;
}

/** The options a task (or a task's sub-command) accepts, from its `--help`. */
export interface HelpTable {
  /** The synopsis: the help's first line. */
  synopsis: string;
  /** Each option by flag (kebab-case, without dashes). */
  options: Map<string, OptionSpec>;
  /**
   * The commands the help shows on lines of their own (`  deno task …`,
   * the synopsis aside), with their 1-based lines, up to a run of three
   * spaces (a column of descriptions).
   */
  examples: { line: number; text: string }[];
}

const SHELL_LANGUAGES = new Set(["", "sh", "bash", "shell", "console", "zsh"]);

/**
 * `deno task` or `deno@2.9.6 task`, then the task's name; or `deno run`, its
 * flags, then a script.
 */
const COMMAND =
  /\bdeno(?:@[\w.-]+)?\s+(?:task\s+|run\s+(?:-[\w=.,-]+\s+)*(?=\S+\.ts\b))/g;

/** Tasks that take positional arguments, and how. */
const POSITIONALS: Record<string, "verb" | "subcommand" | "any"> = {
  sweep: "verb",
  study: "subcommand",
  report: "any",
};

/**
 * Split a shell line into words: quotes removed, a word stops at an
 * unquoted operator (`|`, `;`, `&`, `>`, `<`, `(`, `)`) or `#` at a word's
 * start, where the command ends.
 */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let word = "";
  let started = false;
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = "";
      else word += c;
      continue;
    }
    // `<the run folder>` is one placeholder, not a redirect.
    const close = !started && c === "<" ? text.indexOf(">", i) : -1;
    if (close > i) {
      words.push(text.slice(i, close + 1));
      i = close;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      started = true;
      continue;
    }
    if (/\s/.test(c)) {
      if (started) words.push(word);
      word = "";
      started = false;
      continue;
    }
    // `plan|run|status` inside a word is a placeholder's alternatives; a
    // lone `|`, `;`, `&&`, `>`, `)` or a `#` starting a word ends the command.
    const alone = !started && (i + 1 === text.length || /\s/.test(text[i + 1]));
    if (
      c === ";" || c === ")" || c === "(" || c === "<" ||
      (c === ">" && (!started || /^\d$/.test(word))) ||
      c === "&" || (c === "|" && alone) ||
      (c === "#" && !started)
    ) {
      if (started && !(c === ">" && /^\d$/.test(word))) words.push(word);
      return words;
    }
    word += c;
    started = true;
  }
  if (started) words.push(word);
  return words;
}

/** A word that stands for a value the reader supplies. */
export function isPlaceholder(word: string): boolean {
  return /^[A-Z][A-Z0-9_]*$/.test(word) || /^<.*>$/.test(word) ||
    word.includes("…") || word.includes("...") || word.includes("$") ||
    word.includes("*");
}

/** The variables assigned on a line that is only assignments (`A=1 B="x y"`). */
function assignments(line: string): [string, string][] | undefined {
  const words = shellWords(line);
  if (words.length === 0) return undefined;
  const out: [string, string][] = [];
  for (const w of words) {
    const m = /^([A-Za-z_]\w*)=(.*)$/s.exec(w);
    if (!m) return undefined;
    out.push([m[1], m[2]]);
  }
  return out;
}

/** Replace `$VAR` and `${VAR}` words by the words of their known value. */
function splice(words: string[], vars: ReadonlyMap<string, string>): string[] {
  return words.flatMap((w) => {
    const m = /^\$(?:\{(\w+)\}|(\w+))$/.exec(w);
    const value = m ? vars.get(m[1] ?? m[2]) : undefined;
    return value !== undefined && !value.includes("$(")
      ? shellWords(value)
      : [w];
  });
}

/** The commands in one piece of text (a joined shell line or a code span). */
function commandsIn(
  text: string,
  at: { file: string; line: number; inline: boolean },
  vars: ReadonlyMap<string, string>,
): DocCommand[] {
  const found: DocCommand[] = [];
  for (const m of text.matchAll(COMMAND)) {
    const rest = text.slice(m.index + m[0].length);
    // `[--seed N]`: an optional part is checked as if given; `[options]`
    // stands for options.
    const words = splice(shellWords(rest), vars).filter((w) =>
      w !== "[options]"
    ).map((w) => w.replace(/^\[/, "").replace(/\]$/, "")).filter((w) =>
      w !== ""
    );
    if (words.length === 0) continue;
    // `--` ends the command's options: what follows is another command's
    // (`tools/mutate.ts … -- deno test …`), not checked against this help.
    const end = words.indexOf("--");
    const [task, ...args] = end < 0 ? words : words.slice(0, end);
    // The quoted text, up to where the words ended (a comment, an operator).
    const shown = `${m[0]}${rest}`.replace(/\s+/g, " ")
      .split(/\s+#|\s\|\s|\s;|\s&&|\s>/)[0].trim();
    const script = /\brun\s/.test(m[0]);
    found.push({ ...at, text: shown, task, args, script });
  }
  return found;
}

/**
 * Every `deno task …` command of a Markdown text, in fenced shell blocks
 * and in inline code.
 *
 * @param markdown The file's text.
 * @param file Its name, for the results.
 * @returns The commands, in order.
 */
export function extractCommands(markdown: string, file: string): DocCommand[] {
  const lines = markdown.split("\n");
  const found: DocCommand[] = [];
  const vars = new Map<string, string>();
  let fence: { marker: string; shell: boolean } | undefined;
  let paragraph: { start: number; lines: string[] } | undefined;
  const endParagraph = () => {
    if (paragraph) found.push(...inlineCommands(paragraph, file));
    paragraph = undefined;
  };
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const open = /^\s*(`{3,}|~{3,})\s*([\w-]*)/.exec(raw);
    if (fence) {
      if (open && open[1].startsWith(fence.marker) && open[2] === "") {
        fence = undefined;
        continue;
      }
      if (!fence.shell) continue;
      // A trailing backslash joins the next line.
      const start = i;
      let text = raw;
      while (/\\\s*$/.test(text) && i + 1 < lines.length) {
        text = text.replace(/\\\s*$/, " ") + lines[++i];
      }
      const assigned = assignments(text);
      if (assigned) {
        for (const [k, v] of assigned) vars.set(k, v);
        continue;
      }
      found.push(
        ...commandsIn(text, { file, line: start + 1, inline: false }, vars),
      );
      continue;
    }
    if (open) {
      endParagraph();
      fence = {
        marker: open[1],
        shell: SHELL_LANGUAGES.has(open[2].toLowerCase()),
      };
      continue;
    }
    if (raw.trim() === "") {
      endParagraph();
      continue;
    }
    paragraph ??= { start: i, lines: [] };
    paragraph.lines.push(raw);
  }
  endParagraph();
  return found.sort((a, b) => a.line - b.line);
}

/** The commands in the inline code spans of a paragraph. */
function inlineCommands(
  paragraph: { start: number; lines: string[] },
  file: string,
): DocCommand[] {
  const text = paragraph.lines.join("\n");
  const found: DocCommand[] = [];
  for (const m of text.matchAll(/(?<!`)`([^`]+)`(?!`)/g)) {
    const line = paragraph.start + 1 +
      text.slice(0, m.index + 1 + m[1].search(/\bdeno/)).split("\n").length -
      1;
    const span = m[1].replace(/\s+/g, " ");
    found.push(...commandsIn(span, { file, line, inline: true }, new Map()));
  }
  return found;
}

/**
 * Read the option lines of a `--help` text written by `@d3pm/cli`'s
 * `usageText`: under `Options:`, or under each group's `HEADING options:`.
 *
 * @param help The text.
 * @returns The synopsis and the options, or undefined without an
 *   `Options:` section.
 */
export function parseHelp(help: string): HelpTable | undefined {
  const lines = help.split("\n");
  // `Options:`, or one `HEADING options:` per group.
  const starts = lines.flatMap((l, i) =>
    /^(\S.* )?[Oo]ptions:$/.test(l) ? [i] : []
  );
  if (starts.length === 0) return undefined;
  // Each option: its first line `  --flag VALUE  help`, then indented lines.
  const entries: { head: string; help: string[] }[] = [];
  for (const start of starts) {
    for (const line of lines.slice(start + 1)) {
      if (line.trim() === "") break;
      if (/^ {2}-/.test(line)) entries.push({ head: line.trim(), help: [] });
      else entries.at(-1)?.help.push(line.trim());
    }
  }
  const options = new Map<string, OptionSpec>();
  for (const { head, help } of entries) {
    const m = /^--([\w-]+)(?: (\S+))?(?:\s{2,}(.*))?$/.exec(head);
    if (!m) continue; // `-h, --help`
    const [, flag, value, first] = m;
    const text = [first ?? "", ...help].join(" ").trim();
    options.set(flag, specOf(value, text));
  }
  const examples = lines.flatMap((line, i) =>
    i > 0 && /^\s{2,}deno task /.test(line)
      ? [{ line: i + 1, text: line.trim().split(/\s{3,}/)[0] }]
      : []
  );
  return { synopsis: lines[0].trim(), options, examples };
}

/** An option's kind from its placeholder and help text. */
function specOf(value: string | undefined, help: string): OptionSpec {
  if (value === undefined) return { kind: "boolean", help };
  if (value === "N") return { kind: "integer", help };
  if (value === "X") return { kind: "number", help };
  const alternatives = value.split("|");
  if (
    alternatives.length > 1 &&
    alternatives.every((a) => /^[a-z0-9][\w.-]*$/.test(a))
  ) {
    return { kind: "choice", choices: alternatives, help };
  }
  const listed = /: one of (.*?)(?: \(default [^)]*\))?$/.exec(help);
  if (listed) {
    return { kind: "choice", choices: listed[1].split(/,\s*/), help };
  }
  return { kind: "string", help };
}

/** The script a task runs when it is `deno run … FILE.ts` (else undefined). */
function scriptOf(command: string): string | undefined {
  const m = /^deno run(?: -\S+)* (\S+\.ts)$/.exec(command.trim());
  return m?.[1];
}

/** Asks each task for its `--help` once, and remembers. */
export class TaskHelp {
  readonly #root: string;
  readonly #tasks: Record<string, string>;
  readonly #cache = new Map<string, Promise<HelpTable | string>>();
  readonly #scripts = new Set<string>();

  /**
   * @param root The repository root (where deno.json is).
   */
  constructor(root: string) {
    this.#root = root;
    const config = JSON.parse(Deno.readTextFileSync(`${root}/deno.json`));
    this.#tasks = config.tasks ?? {};
  }

  /** The tasks of deno.json (and the scripts resolved so far). */
  get tasks(): readonly string[] {
    return Object.keys(this.#tasks);
  }

  /** Whether the task's script reads its options through `@d3pm/cli`. */
  readsOptions(task: string): boolean {
    const script = scriptOf(this.#tasks[task] ?? "");
    if (script === undefined) return false;
    const source = Deno.readTextFileSync(`${this.#root}/${script}`);
    return /readCommandLine|parseCommandLine|"--help"/.test(source);
  }

  /**
   * What a `deno run … PATH.ts` runs: the task whose script PATH is (or
   * ends in, after a folder: `/shared/d3pm/examples/experiment.ts`), else
   * the script itself when it is in the repository and reads
   * `@d3pm/cli` (it is then asked `deno run -A PATH --help`), else
   * undefined: not checked.
   */
  resolveScript(path: string): string | undefined {
    const task = Object.keys(this.#tasks).find((t) => {
      const script = scriptOf(this.#tasks[t]);
      return script !== undefined &&
        (path === script || path.endsWith(`/${script}`));
    });
    if (task !== undefined) return task;
    try {
      const source = Deno.readTextFileSync(`${this.#root}/${path}`);
      if (!/readCommandLine|parseCommandLine/.test(source)) return undefined;
    } catch {
      return undefined;
    }
    this.#tasks[path] = `deno run -A ${path}`;
    this.#scripts.add(path);
    return path;
  }

  /**
   * The options of `deno task TASK [SUB] --help`, or the one line that says
   * why there are none.
   */
  table(task: string, sub?: string): Promise<HelpTable | string> {
    const key = sub === undefined ? task : `${task} ${sub}`;
    let got = this.#cache.get(key);
    if (!got) {
      got = this.#ask(task, sub);
      this.#cache.set(key, got);
    }
    return got;
  }

  /** How many `--help` runs were made. */
  get asked(): number {
    return this.#cache.size;
  }

  async #ask(task: string, sub?: string): Promise<HelpTable | string> {
    const run = this.#scripts.has(task)
      ? ["run", "-A", task]
      : ["task", "-q", task];
    const named = `deno ${run.filter((a) => a !== "-q").join(" ")}${
      sub === undefined ? "" : ` ${sub}`
    }`;
    const args = [...run, ...(sub === undefined ? [] : [sub])];
    let help = await this.#help(args, false);
    // A plain --help that shows only the common options names `--help all`.
    if (help.ok && /--help all\b/.test(help.text)) {
      help = await this.#help(args, true);
    }
    if (!help.ok) return `${named} --help exits ${help.why}`;
    return parseHelp(help.text) ?? `${named} --help lists no options`;
  }

  /** The stdout of `deno ARGS --help [all]`, or the exit code and error line. */
  async #help(
    args: string[],
    all: boolean,
  ): Promise<{ ok: true; text: string } | { ok: false; why: string }> {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [...args, "--help", ...(all ? ["all"] : [])],
      cwd: this.#root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    if (out.success) return { ok: true, text: stdout };
    const why = stderr.split("\n").find((l) => l.startsWith("error: ")) ??
      stderr.trim().split("\n").at(-1) ?? "";
    return { ok: false, why: `${out.code}: ${why}` };
  }
}

/**
 * What is wrong with one command: an unknown task, flag, verb or study, a
 * value its option refuses. Empty when it holds.
 *
 * @param command The command.
 * @param help The tasks' `--help`.
 * @returns One line per problem.
 */
export async function checkCommand(
  command: DocCommand,
  help: TaskHelp,
): Promise<string[]> {
  if (command.script) {
    const task = help.resolveScript(command.task);
    if (task === undefined) return [];
    command = { ...command, task, script: false };
  }
  const { task } = command;
  if (isPlaceholder(task)) return [];
  if (!help.tasks.includes(task)) {
    return [`no task "${task}" in deno.json`];
  }
  const args = command.args;
  // A bare `deno task NAME` names the task.
  if (args.length === 0) return [];
  if (!help.readsOptions(task)) {
    const given = args.filter((a) => !isPlaceholder(a));
    return given.length === 0 ? [] : [
      `task "${task}" has no @d3pm/cli option table: its arguments ${
        given.join(" ")
      } cannot be checked`,
    ];
  }
  const mode = POSITIONALS[task];
  if (mode === "subcommand") {
    const sub = args.find((a) => !a.startsWith("-"));
    if (sub === undefined || isPlaceholder(sub)) return [];
    const problems: string[] = [];
    for (const name of sub.split("|")) {
      const t = await help.table(task, name);
      if (typeof t === "string") problems.push(t);
      else {
        problems.push(
          ...checkArgs(
            args.filter((_, i) => i !== args.indexOf(sub)),
            t,
            "none",
            command,
          ),
        );
      }
    }
    return problems;
  }
  const table = await help.table(task);
  if (typeof table === "string") return [table];
  return checkArgs(args, table, mode ?? "none", command);
}

/** A word asking for help: `-h`, `--help` or `--help=all`. */
const HELP = /^(-h|--help|--help=all)$/;

/** Check the words after a task's name against its options. */
function checkArgs(
  args: string[],
  table: HelpTable,
  positionals: "verb" | "any" | "none",
  command: DocCommand,
): string[] {
  const problems: string[] = [];
  // As @d3pm/cli reads them: a value is the next word unless that is an option.
  const isOption = (w: string) => {
    const name = splitFlag(w.replace(/^--/, ""))[0];
    return HELP.test(w) ||
      (w.startsWith("--") &&
        (table.options.has(name) ||
          (name.startsWith("no-") && table.options.has(name.slice(3)))));
  };
  const seen: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const word = args[i];
    if (HELP.test(word)) {
      // `--help all`: every option, as @d3pm/cli reads it.
      if (!word.includes("=") && args[i + 1] === "all") i++;
      continue;
    }
    if (!word.startsWith("--")) {
      seen.push(word);
      continue;
    }
    const [name, inline] = splitFlag(word.slice(2));
    let spec = table.options.get(name);
    let negated = false;
    if (!spec && name.startsWith("no-")) {
      const base = table.options.get(name.slice(3));
      if (base?.kind === "boolean") [spec, negated] = [base, true];
    }
    if (!spec) {
      const near = [...table.options.keys()].find((f) =>
        distance(f, name) <= 2
      );
      problems.push(
        `unknown option --${name}${
          near ? ` (--${near}?)` : ""
        }: not among the options of ${
          table.synopsis.replace(/ (\[|--).*$/, "")
        } --help`,
      );
      // Its value, if it has one, goes with it.
      const next = args[i + 1];
      if (inline === undefined && next !== undefined && !next.startsWith("-")) {
        i++;
      }
      continue;
    }
    let value = inline;
    if (spec.kind === "boolean") {
      if (
        value === undefined && !negated &&
        /^(true|false|1|0)$/.test(args[i + 1] ?? "")
      ) value = args[++i];
    } else if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || isOption(next)) {
        // In prose, `deno task evaluate --gen-samples` names the flag.
        if (!(next === undefined && command.inline)) {
          problems.push(`option --${name} needs a value`);
        }
        continue;
      }
      value = args[++i];
    }
    if (value === undefined || isPlaceholder(value)) continue;
    const alternatives = spec.kind === "choice" ? value.split("|") : [value];
    for (const v of alternatives) {
      if (isPlaceholder(v)) continue;
      try {
        convertOption(keyOf(name), spec, v);
      } catch (e) {
        if (!(e instanceof UsageError)) throw e;
        problems.push(e.message);
      }
    }
  }
  // `deno task sweep --help` asks for help: it needs no command.
  const help = args.some((w) => HELP.test(w));
  if (!help || seen.length > 0) {
    problems.push(
      ...checkPositionals(seen, table, positionals, command.task),
    );
  }
  return problems;
}

/** The edit distance of two short words (insertions, deletions, changes). */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        row[j] + 1,
        next[j - 1] + 1,
        row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length];
}

/** `name=value` or `name`. */
function splitFlag(text: string): [string, string | undefined] {
  const at = text.indexOf("=");
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/** Positionals: a verb from the synopsis and one target, any, or none. */
function checkPositionals(
  seen: string[],
  table: HelpTable,
  positionals: "verb" | "any" | "none",
  task: string,
): string[] {
  if (positionals === "any") return [];
  // `FLAGS` or `…` where options go stands for options.
  const real = seen.filter((w) => !isPlaceholder(w));
  if (positionals === "none") {
    return real.length === 0
      ? []
      : [`unexpected argument "${real[0]}": this task takes only options`];
  }
  // The synopsis: `deno task sweep plan|run|status [options]`.
  const verbs = table.synopsis.split(/\s+/)[3]?.split("|") ?? [];
  const [verb, ...rest] = seen;
  if (verb === undefined) return [`deno task ${task} needs a command`];
  const problems = verb.split("|").filter((v) =>
    !isPlaceholder(v) && !verbs.includes(v)
  ).map((v) => `unknown command "${v}": expected one of ${verbs.join(", ")}`);
  if (rest.length > 1) {
    problems.push(`unexpected argument "${rest[1]}": one SPEC.json or DIR`);
  }
  return problems;
}

/**
 * The Markdown files git tracks, but for `tests/testdata/`; without git (a
 * copy of the tree), those under the root but for deno.json's `exclude`
 * and hidden folders.
 */
async function trackedMarkdown(root: string): Promise<string[]> {
  const keep = (f: string) => f !== "" && !f.startsWith("tests/testdata/");
  try {
    const out = await new Deno.Command("git", {
      args: ["ls-files", "*.md"],
      cwd: root,
      stdout: "piped",
      stderr: "null",
    }).output();
    if (out.success) {
      return new TextDecoder().decode(out.stdout).split("\n").filter(keep)
        .sort();
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const config = JSON.parse(await Deno.readTextFile(`${root}/deno.json`));
  const excluded: string[] = config.exclude ?? [];
  const found: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(`${root}/${dir}`)) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (
        entry.name.startsWith(".") || entry.name === "node_modules" ||
        excluded.some((x) => `${path}/`.startsWith(x.replace(/\/?$/, "/")))
      ) continue;
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && path.endsWith(".md")) found.push(path);
    }
  };
  await walk("");
  return found.filter(keep).sort();
}

/** Check the files (default: every tracked Markdown file); exit 1 on a stale one. */
async function main(args: string[]): Promise<number> {
  if (args.some((a) => a.startsWith("-"))) {
    console.error(
      "usage: deno run -A tools/check_doc_commands.ts [FILE.md…] (no files: every tracked Markdown file)",
    );
    return 2;
  }
  const root = decodeURIComponent(new URL("..", import.meta.url).pathname)
    .replace(/\/$/, "");
  const files = args.length > 0 ? args : await trackedMarkdown(root);
  const started = performance.now();
  const help = new TaskHelp(root);
  const commands: DocCommand[] = [];
  for (const file of files) {
    const path = args.length > 0 ? file : `${root}/${file}`;
    commands.push(...extractCommands(await Deno.readTextFile(path), file));
  }
  // Ask each task once, two at a time, before checking.
  const tasks = commands.map((c) =>
    c.script ? help.resolveScript(c.task) : c.task
  );
  const unchecked = tasks.filter((t) => t === undefined).length;
  // Over the repository, every task's --help, for the commands it shows.
  const all = args.length === 0 ? help.tasks : [];
  const wanted = [...new Set([...tasks, ...all])].filter((t): t is string =>
    t !== undefined && help.tasks.includes(t) && help.readsOptions(t) &&
    POSITIONALS[t] !== "subcommand"
  );
  for (let i = 0; i < wanted.length; i += 2) {
    await Promise.all(wanted.slice(i, i + 2).map((t) => help.table(t)));
  }
  const inDocs = commands.length;
  for (const task of all.filter((t) => wanted.includes(t))) {
    const table = await help.table(task);
    if (typeof table === "string") continue;
    for (const { line, text } of table.examples) {
      const at = { file: `deno task ${task} --help`, line, inline: false };
      commands.push(...commandsIn(text, at, new Map()));
    }
  }
  let stale = 0;
  for (const command of commands) {
    const problems = await checkCommand(command, help);
    if (problems.length === 0) continue;
    stale++;
    for (const p of problems) {
      console.log(`${command.file}:${command.line}: ${command.text} — ${p}`);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.error(
    `${inDocs} commands in ${files.length} files (${unchecked} a deno run of a script without options: not checked) and ${
      commands.length - inDocs
    } in the tasks' --help, against ${help.asked} --help runs in ${seconds} s: ${stale} stale`,
  );
  return stale === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
