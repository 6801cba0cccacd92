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
 * Why `dir` cannot be the folder of a merged report or a sweep — it is a
 * file, or it holds a run or a model (`config.json`, `results.json`), whose
 * own files would be overwritten or hidden — or undefined when it can (a
 * new folder, or one of the same kind).
 *
 * @param dir The folder.
 * @returns The reason, to follow `Cannot … to DIR: `.
 */
export async function notAFolderOfItsOwn(
  dir: string,
): Promise<string | undefined> {
  const stat = await Deno.stat(dir).catch(() => undefined);
  if (!stat) return undefined;
  if (!stat.isDirectory) return "it is a file, not a folder";
  for (const name of ["config.json", "results.json"]) {
    if (await Deno.stat(`${dir}/${name}`).then(() => true, () => false)) {
      return `it holds a run or a model (${name})`;
    }
  }
  return undefined;
}
