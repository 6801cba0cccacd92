/**
 * `deno doc --lint` over every published entry point of the workspace (each
 * member's deno.json `exports`), so the list in `deno task ok` cannot miss
 * one. Exits with deno doc's status.
 *
 *   deno run -A tools/doc_lint.ts
 *
 * @module
 */
import { workspaceEntryPoints } from "./_entry_points.ts";

if (Deno.args.length > 0) {
  console.error(
    "usage: deno run -A tools/doc_lint.ts (no arguments: it lints every workspace member's exports)",
  );
  Deno.exit(2);
}
const { code } = await new Deno.Command(Deno.execPath(), {
  args: ["doc", "--lint", ...workspaceEntryPoints()],
  stdout: "inherit",
  stderr: "inherit",
}).output();
Deno.exit(code);
