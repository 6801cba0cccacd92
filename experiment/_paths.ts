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
