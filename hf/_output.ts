// Writing an export or an import: the whole directory is built under a
// temporary name beside the target and renamed into place, so a reader sees
// no directory or a complete one; an existing target is replaced only when
// forced. Weights are streamed into safetensors one tensor at a time.

import {
  fileAbove,
  isInside,
  pathExists,
  safetensorsHeaderBytes,
} from "@d3pm/core";
import { enclosingRun, shellQuote } from "@d3pm/experiment";
import { InteropError } from "./errors.ts";

/**
 * Where an export or an import goes, and what `--force` may replace there:
 * only a folder the same command wrote (its marker file says so) or an
 * empty one. A folder of the user's, a file, `/` or the source itself are
 * never replaced, with or without `--force`.
 */
export interface Target {
  /** The folder to write (no trailing slash: see {@linkcode targetPath}). */
  path: string;
  /** Replace an existing folder the command wrote. */
  force: boolean;
  /** The command-line flag, for messages (`--to`). */
  flag: string;
  /** What the command writes, for messages (`an export deno task export wrote`). */
  what: string;
  /** The file that marks it, for messages (`import.json`). */
  marker: string;
  /** Whether an existing folder is one the command wrote. */
  wrote(dir: string): Promise<boolean>;
  /**
   * What the command reads (`--run`, `--from`): refused when it is the
   * target or inside it, since replacing the target would delete it.
   */
  sources?: { flag: string; path: string }[];
  /**
   * The files a folder the command wrote may hold, as paths inside it
   * (`config.json`, `seed-0/ar/model.safetensors`): when given, `--force`
   * refuses a folder holding any other (a user's notes, a run copied there,
   * a file beside the weights), naming the first few.
   */
  writes?: readonly string[];
  /**
   * Where a warning of what an interrupted export or import left beside
   * the target goes (default: stderr).
   */
  log?: (line: string) => void;
}

/**
 * A target as given on the command line, without trailing slashes (`out/`
 * is `out`; `/` stays `/`); an empty one is refused.
 *
 * @throws {InteropError} For an empty path.
 *
 * @example
 * ```ts
 * import { targetPath } from "./_output.ts";
 * import { assertEquals, assertThrows } from "@std/assert";
 * assertEquals(targetPath("out//", "--to"), "out");
 * assertEquals(targetPath("/", "--to"), "/");
 * assertThrows(() => targetPath("../..", "--to"), Error, "ends in ..");
 * ```
 */
export function targetPath(path: string, flag: string): string {
  if (path === "") {
    throw new InteropError(`${flag} is empty: it takes the folder to write`);
  }
  const trimmed = path.replace(/(.)\/+$/, "$1");
  // The folder is built beside its name and renamed into place: `.` and
  // `..` have no "beside" (the temporary folder landed inside the target,
  // which then "held files").
  const last = trimmed.slice(trimmed.lastIndexOf("/") + 1);
  if (last === "." || last === "..") {
    throw new InteropError(
      `${flag} ${path} ends in ${last}: name the folder itself (e.g. ../out)`,
    );
  }
  return trimmed;
}

/**
 * Refuse a target inside a run folder ({@linkcode enclosingRun}, as a run's
 * `--out` is), and an existing target unless forced, and even then unless it
 * is a folder the command wrote, or empty (checked before any work, and again
 * before the rename).
 *
 * @example A forced target holding a file the command does not write
 * ```ts
 * import { checkTarget, type Target } from "./_output.ts";
 * import { assertRejects } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/seed-0/ar`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/import.json`, "{}");
 * await Deno.writeTextFile(`${dir}/seed-0/ar/notes.md`, "mine");
 * const target: Target = {
 *   path: dir,
 *   force: true,
 *   flag: "--to",
 *   what: "an import",
 *   marker: "import.json",
 *   writes: ["import.json", "seed-0/ar/model.safetensors"],
 *   wrote: () => Promise.resolve(true),
 * };
 * await assertRejects(
 *   () => checkTarget(target),
 *   Error,
 *   `${dir} holds seed-0/ar/notes.md, which an import does not write`,
 * );
 * await Deno.remove(`${dir}/seed-0/ar/notes.md`);
 * await checkTarget(target); // only its own files: may be replaced
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function checkTarget(target: Target): Promise<void> {
  const { path, flag } = target;
  // As a run's --out: a folder inside a run goes with that run (a --force
  // of it moves it aside, a reader of the run walks into it).
  const outer = await enclosingRun(path);
  if (outer !== undefined) {
    throw new InteropError(
      `${flag} ${path} is inside the run folder ${outer} (it has a run's config.json): a run folder holds one run, and a --force of it would move this folder aside with it; choose a ${flag} outside it`,
    );
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return await refuseMovedAside(path);
    // `--to a/file/out`: the system's "Not a directory (os error 20): lstat
    // …" named neither the file nor what the flag takes.
    const file = e instanceof Deno.errors.NotADirectory
      ? await fileAbove(path)
      : undefined;
    if (file !== undefined) {
      throw new InteropError(
        `${flag} ${path} is inside ${file}, which is a file, not a folder; ${flag} takes a folder to write: choose another`,
      );
    }
    throw new InteropError(
      `Cannot write ${flag} ${path}: ${
        (e instanceof Error ? e.message : String(e)).split("\n")[0]
      }`,
    );
  }
  await checkSources(target);
  if (!target.force) {
    throw new InteropError(
      `${path} already exists: pass --force to replace it, or choose another ${flag}`,
    );
  }
  if (!info.isDirectory) {
    throw new InteropError(
      `${path} is ${
        info.isSymlink ? "a symbolic link" : "a file"
      }, not a folder: --force replaces only ${target.what}; choose another ${flag}`,
    );
  }
  if (!await isEmpty(path) && !await target.wrote(path)) {
    throw new InteropError(
      `${path} holds files but no ${target.marker}: --force replaces only ${target.what} (or an empty folder); choose another ${flag}`,
    );
  }
  if (target.writes !== undefined) {
    const others = await entriesBut(path, target.writes);
    if (others.length > 0) {
      const shown = others.slice(0, 3).join(", ");
      const more = others.length > 3 ? `, and ${others.length - 3} more` : "";
      throw new InteropError(
        `${path} holds ${shown}${more}, which ${target.what} does not write: --force would delete ${
          others.length === 1 ? "it" : "them"
        }; move ${
          others.length === 1 ? "it" : "them"
        } out or choose another ${flag}`,
      );
    }
  }
}

// A temporary name beside the target: `<path>.<uuid>.partial` (being
// written) or `<path>.<uuid>.replaced` (the earlier copy under --force,
// between the two renames).
const LEFTOVER =
  /\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(partial|replaced)$/;

/**
 * The folders beside `path` that an export or import writing it left:
 * `<path>.<uuid>.partial` (sorted by name) and `<path>.<uuid>.replaced`
 * (newest first, by modification time).
 *
 * @example
 * ```ts
 * import { leftoversOf } from "./_output.ts";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * const uuid = "0b5c2d3e-1f2a-4b3c-8d4e-5f6a7b8c9d0e";
 * for (const name of [`E.${uuid}.partial`, `E.${uuid}.replaced`, `EE.${uuid}.partial`, "E.x.partial"]) {
 *   await Deno.mkdir(`${root}/${name}`);
 * }
 * assertEquals(await leftoversOf(`${root}/E`), {
 *   partial: [`${root}/E.${uuid}.partial`],
 *   replaced: [`${root}/E.${uuid}.replaced`],
 * });
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function leftoversOf(
  path: string,
): Promise<{ partial: string[]; replaced: string[] }> {
  const at = path.lastIndexOf("/");
  const parent = at < 0 ? "." : path.slice(0, at) || "/";
  const base = path.slice(at + 1);
  const found = { partial: [] as string[], replaced: [] as string[] };
  try {
    for await (const e of Deno.readDir(parent)) {
      const m = LEFTOVER.exec(e.name);
      if (!e.isDirectory || !m || e.name.slice(0, m.index) !== base) continue;
      found[m[1] as "partial" | "replaced"].push(
        at < 0 ? e.name : `${path.slice(0, at)}/${e.name}`,
      );
    }
  } catch {
    // No parent (yet), or unreadable: nothing to say.
  }
  found.partial.sort();
  // Newest first: the copy to restore is the one the last --force moved
  // aside (the names' UUIDs are random, no order).
  const mtime = async (p: string) =>
    (await Deno.stat(p).catch(() => undefined))?.mtime?.getTime() ?? 0;
  const times = new Map(
    await Promise.all(
      found.replaced.map(async (p) => [p, await mtime(p)] as const),
    ),
  );
  found.replaced.sort((a, b) =>
    times.get(b)! - times.get(a)! || (a < b ? -1 : a > b ? 1 : 0)
  );
  return found;
}

// The target is missing: a `--force` killed between its two renames left
// the earlier copy in `<path>.<uuid>.replaced`. Refused, with the `mv` that
// restores it: a new copy written now would leave it there unmentioned.
async function refuseMovedAside(path: string): Promise<void> {
  const { replaced } = await leftoversOf(path);
  if (replaced.length === 0) return;
  const aside = replaced[0];
  if (replaced.length === 1) {
    throw new InteropError(
      `${path} is missing, but ${aside} holds the copy an interrupted --force moved aside before putting the new one in place: restore it with: mv ${
        shellQuote(aside)
      } ${shellQuote(path)} — or remove it (rm -r ${
        shellQuote(aside)
      }) to write a new one`,
    );
  }
  const listed: string[] = [];
  for (const r of replaced) {
    const at = (await Deno.stat(r).catch(() => undefined))?.mtime;
    listed.push(`${r} (modified ${at?.toISOString() ?? "unknown"})`);
  }
  throw new InteropError(
    `${path} is missing, but ${replaced.length} copies interrupted --force runs moved aside are beside it, newest first: ${
      listed.join(", ")
    }; restore the newest with: mv ${shellQuote(aside)} ${
      shellQuote(path)
    } — or remove them (rm -r ${
      replaced.map(shellQuote).join(" ")
    }) to write a new one`,
  );
}

// Warn of what an interrupted export or import left beside the target: a
// half-written `.partial` (or one another process is writing now) and an
// earlier copy `.replaced` with the target in place. Nothing is removed.
async function warnLeftovers(
  path: string,
  log: (line: string) => void,
): Promise<void> {
  const { partial, replaced } = await leftoversOf(path);
  for (const p of partial) {
    log(
      `warning: ${p} was left by an export or import of ${path} that did not finish (interrupted, or still writing): once nothing writes it, remove it: rm -r ${
        shellQuote(p)
      }`,
    );
  }
  for (const r of replaced) {
    log(
      `warning: ${r} is an earlier copy of ${path} left by an interrupted --force: remove it if it is not needed: rm -r ${
        shellQuote(r)
      }`,
    );
  }
}

// The target exists: what the command reads must not be it or inside it
// (compared as real paths: links and `..` resolved), as replacing the
// target deletes the folder with everything in it.
async function checkSources(target: Target): Promise<void> {
  const at = await Deno.realPath(target.path).catch(() => undefined);
  if (at === undefined) return;
  for (const source of target.sources ?? []) {
    const real = await Deno.realPath(source.path).catch(() => undefined);
    if (real === undefined) continue;
    if (isInside(at, real)) {
      throw new InteropError(
        `${target.flag} ${target.path} ${
          real === at ? "is" : "holds"
        } ${source.flag} ${source.path} itself: replacing it would delete what is read; choose a ${target.flag} outside ${source.path}`,
      );
    }
  }
}

// The entries of a folder not in `known`, as paths inside it, sorted: a
// folder is walked into when a known path lies inside it (`seed-0` for
// `seed-0/ar/config.json`), else it is unknown as a whole; a link is never
// followed.
async function entriesBut(
  dir: string,
  known: readonly string[],
  prefix = "",
): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const name = prefix + e.name;
    if (known.includes(name)) continue;
    if (e.isDirectory && known.some((k) => k.startsWith(`${name}/`))) {
      out.push(...await entriesBut(`${dir}/${e.name}`, known, `${name}/`));
    } else {
      out.push(name);
    }
  }
  return out.sort();
}

async function isEmpty(dir: string): Promise<boolean> {
  for await (const _ of Deno.readDir(dir)) return false;
  return true;
}

/**
 * Build a directory under a temporary name and move it to the target. With
 * `force` an existing target is moved aside, replaced, then removed; a
 * failure removes the temporary directory and leaves the target as it was.
 *
 * @example Write a folder, then replace it with force
 * ```ts
 * import { type Target, writeDirectory } from "./_output.ts";
 * import { assertEquals } from "@std/assert";
 * const root = await Deno.makeTempDir();
 * const target: Target = {
 *   path: `${root}/out`,
 *   force: false,
 *   flag: "--to",
 *   what: "an export",
 *   marker: "a.txt",
 *   writes: ["a.txt"],
 *   wrote: (dir) => Deno.stat(`${dir}/a.txt`).then(() => true, () => false),
 * };
 * const fill = (text: string) => (dir: string) =>
 *   Deno.writeTextFile(`${dir}/a.txt`, text);
 * await writeDirectory(target, fill("one"));
 * await writeDirectory({ ...target, force: true }, fill("two"));
 * assertEquals(await Deno.readTextFile(`${root}/out/a.txt`), "two");
 * await Deno.remove(root, { recursive: true });
 * ```
 */
export async function writeDirectory(
  target: Target,
  fill: (dir: string) => Promise<void>,
): Promise<void> {
  await checkTarget(target);
  const path = target.path;
  await warnLeftovers(path, target.log ?? console.error);
  const parent = path.includes("/")
    ? path.slice(0, path.lastIndexOf("/")) || "/"
    : ".";
  const created = await makeParents(parent);
  const temp = `${path}.${crypto.randomUUID()}.partial`;
  try {
    await Deno.mkdir(temp);
  } catch (e) {
    await removeEmpty(created);
    throw e;
  }
  try {
    await fill(temp);
    await checkTarget(target);
    if (await pathExists(path)) {
      const aside = `${path}.${crypto.randomUUID()}.replaced`;
      await Deno.rename(path, aside);
      await Deno.rename(temp, path);
      await Deno.remove(aside, { recursive: true });
    } else {
      await Deno.rename(temp, path);
    }
  } catch (e) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    await removeEmpty(created);
    throw e;
  }
}

// Create `dir` and its missing ancestors; the folders created, deepest first.
async function makeParents(dir: string): Promise<string[]> {
  const created: string[] = [];
  for (let d = dir; !await pathExists(d);) {
    created.push(d);
    const at = d.lastIndexOf("/");
    if (at < 0) break;
    d = d.slice(0, at) || "/";
  }
  await Deno.mkdir(dir, { recursive: true });
  return created;
}

// Remove the folders a failed write created, deepest first, each only when
// it is still empty (nothing of anyone else's is removed).
async function removeEmpty(created: string[]): Promise<void> {
  for (const d of created) {
    try {
      await Deno.remove(d);
    } catch {
      return;
    }
  }
}

/** A tensor to stream: its name, shape, and its values when its turn comes. */
export interface OutTensor {
  /** Name. */
  name: string;
  /** Shape. */
  shape: number[];
  /** The values (float32, row-major). */
  values(): Float32Array | Promise<Float32Array>;
}

/**
 * Write float32 tensors as safetensors, each computed only when it is
 * written: memory holds one tensor at a time besides what the producers keep.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./_output.ts";
 * import { decodeSafetensors } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const tmp = await Deno.makeTempDir();
 * const path = `${tmp}/w.safetensors`;
 * await writeSafetensors(path, [
 *   { name: "b", shape: [2], values: () => new Float32Array([1, 2]) },
 * ], { format: "pt" });
 * const read = decodeSafetensors(await Deno.readFile(path));
 * assertEquals(read.tensors.get("b")?.shape, [2]);
 * await Deno.remove(tmp, { recursive: true });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: OutTensor[],
  metadata: Record<string, string>,
): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    const writeAll = async (bytes: Uint8Array) => {
      let at = 0;
      while (at < bytes.length) at += await file.write(bytes.subarray(at));
    };
    await writeAll(safetensorsHeaderBytes(tensors, metadata));
    for (const t of tensors) {
      const values = await t.values();
      const numel = t.shape.reduce((a, b) => a * b, 1);
      if (values.length !== numel) {
        throw new InteropError(
          `${t.name}: ${values.length} values for shape [${t.shape}]`,
        );
      }
      await writeAll(
        new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      );
    }
    await file.syncData();
  } finally {
    file.close();
  }
}
