import { RunFolder } from "./run_folder.ts";

/**
 * Whether two paths name one existing folder (through links, `.`, `..` and
 * trailing slashes too); false when either does not exist.
 *
 * @param a A path.
 * @param b Another.
 * @returns Whether they are the same folder.
 */
export async function sameFolder(a: string, b: string): Promise<boolean> {
  try {
    return await Deno.realPath(a) === await Deno.realPath(b);
  } catch {
    return false;
  }
}

/**
 * A path written as the file system reads it, without touching the disk:
 * empty and `.` segments and trailing slashes dropped (`base/./seed-0/` →
 * `base/seed-0`). `..` is kept: through a link it is not the parent.
 *
 * @param path A path.
 * @returns The same path, written one way.
 */
export function lexicalPath(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  const root = path.startsWith("/") ? "/" : "";
  return root + parts.join("/") || ".";
}

/**
 * Why `dir` cannot be the folder of a merged report or a sweep — it is a
 * file, it holds a run or a model (`config.json`, `results.json`), whose
 * own files would be overwritten or hidden, or it holds anything else that
 * is not this tool's own output (`own`): a user's `report.md` in a folder
 * of notes was overwritten by `report --merge --out`, and a sweep was
 * planned among a user's files — or undefined when it can (a new or empty
 * folder, or one of the same kind).
 *
 * @param dir The folder.
 * @param own Whether an entry is what this tool writes there (given all
 *   the folder's names).
 * @returns The reason, to follow `Cannot … to DIR: `.
 */
export async function notAFolderOfItsOwn(
  dir: string,
  own: (name: string, names: ReadonlySet<string>) => boolean = () => false,
): Promise<string | undefined> {
  const stat = await Deno.stat(dir).catch(() => undefined);
  if (!stat) return undefined;
  if (!stat.isDirectory) return "it is a file, not a folder";
  for (const name of ["config.json", "results.json"]) {
    if (await Deno.stat(`${dir}/${name}`).then(() => true, () => false)) {
      return `it holds a run or a model (${name})`;
    }
  }
  const names = new Set<string>();
  for await (const e of Deno.readDir(dir)) names.add(e.name);
  // A lock this very process holds (a study planning its sweep) is its own.
  const mine = names.has(".lock") && await new RunFolder(dir).heldHere();
  const others = [...names].filter((n) =>
    !own(n, names) && !(mine && n === ".lock")
  ).sort();
  if (others.length === 1 && others[0] === ".lock") {
    const stale = await staleLock(dir);
    if (stale) return stale;
  }
  if (others.length > 0) {
    return `it holds other files (${others.slice(0, 3).join(", ")}${
      others.length > 3 ? ", …" : ""
    }), which are not this tool's to write among`;
  }
  return undefined;
}

/**
 * A `.lock` in `dir` whose holder is gone (a study or run killed without
 * releasing it; judged as {@linkcode RunFolder.liveHolder} does) in words,
 * saying to delete it; undefined when its holder is live.
 */
async function staleLock(dir: string): Promise<string | undefined> {
  if (await new RunFolder(dir).liveHolder()) return undefined;
  const text = await Deno.readTextFile(`${dir}/.lock`).catch(() => "");
  let pid: unknown = Number(text.trim());
  if (!Number.isSafeInteger(pid)) {
    try {
      pid = JSON.parse(text)?.pid;
    } catch { /* unreadable: no pid to name */ }
  }
  return `it holds a lock left by ${
    Number.isSafeInteger(pid) ? `pid ${pid}` : "a process"
  }, which is gone: delete ${dir}/.lock`;
}
