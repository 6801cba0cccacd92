/**
 * The published entry points of the workspace: every `exports` value of
 * every workspace member's deno.json, as paths relative to the root (e.g.
 * `webgpu/plan.ts`). `deno task ok` lints and checks examples over exactly
 * these, so a new subpath cannot be left out of either.
 *
 * @module
 */

interface DenoJson {
  workspace?: string[];
  name?: string;
  exports?: string | Record<string, string>;
}

const readJson = (path: string): DenoJson =>
  JSON.parse(Deno.readTextFileSync(path)) as DenoJson;

/** `a/./b.ts` → `a/b.ts`; `./core` + `./mod.ts` → `core/mod.ts`. */
function join(dir: string, file: string): string {
  const parts: string[] = [];
  for (const p of `${dir}/${file}`.split("/")) {
    if (p === "" || p === ".") continue;
    if (p === "..") parts.pop();
    else parts.push(p);
  }
  return parts.join("/");
}

/**
 * The entry points of the workspace rooted at `root` (a folder holding a
 * deno.json with `workspace`), in workspace order then export order. A member
 * without `exports` (an unpublished folder such as examples/) has none.
 */
export function workspaceEntryPoints(root = "."): string[] {
  const top = readJson(`${root}/deno.json`);
  if (!Array.isArray(top.workspace)) {
    throw new Error(
      `Cannot list entry points: ${root}/deno.json has no "workspace" array of member folders`,
    );
  }
  const out: string[] = [];
  for (const member of top.workspace) {
    const { exports } = readJson(`${root}/${member}/deno.json`);
    if (exports === undefined) continue;
    const files = typeof exports === "string"
      ? [exports]
      : Object.values(exports);
    for (const f of files) out.push(join(member, f));
  }
  return out;
}
