/**
 * Every exported value of the published modules has a running `@example`
 * (issue 21): reads `deno doc --json` of the modules named on the command
 * line and prints `module: name` for each exported symbol that is not a type
 * (interfaces, type aliases, namespaces and re-exported references are
 * skipped) and whose own JSDoc — the function's, the class's, the
 * variable's, not a member's — has no `@example` tag. Exits 1 when any is
 * missing, 0 when none is.
 *
 *   deno run -A tools/check_examples.ts core/mod.ts data/mod.ts …
 *   deno run -A tools/check_examples.ts --workspace
 *
 * `--workspace` checks every published entry point (each workspace member's
 * deno.json `exports`); `deno task ok` runs it that way, over the same
 * modules as `tools/doc_lint.ts`.
 *
 * @module
 */
import { workspaceEntryPoints } from "./_entry_points.ts";

/** The declaration kinds that are types: they need no example. */
const TYPE_KINDS = new Set([
  "interface",
  "typeAlias",
  "namespace",
  "reference",
]);

interface DocTag {
  kind: string;
}
interface DocDeclaration {
  kind: string;
  jsDoc?: { tags?: DocTag[] };
}
interface DocSymbol {
  name: string;
  declarations: DocDeclaration[];
}
interface DocJson {
  nodes: Record<string, { symbols: DocSymbol[] }>;
}

const workspace = Deno.args.length === 1 && Deno.args[0] === "--workspace";
const modules = workspace ? workspaceEntryPoints() : Deno.args;
if (
  modules.length === 0 || (!workspace && modules.some((m) => m.startsWith("-")))
) {
  console.error(
    "usage: deno run -A tools/check_examples.ts MODULE… | --workspace (the published modules, e.g. core/mod.ts data/mod.ts; --workspace: every workspace member's exports)",
  );
  Deno.exit(2);
}
const doc = await new Deno.Command(Deno.execPath(), {
  args: ["doc", "--json", ...modules],
  stdout: "piped",
  stderr: "piped",
  env: { NO_COLOR: "1" },
}).output();
if (!doc.success) {
  const why = new TextDecoder().decode(doc.stderr).trim().split("\n")
    .find((l) => l.startsWith("error: "))?.slice("error: ".length) ??
    `exit ${doc.code}`;
  console.error(`error: deno doc --json cannot read the modules: ${why}`);
  Deno.exit(2);
}
const json = JSON.parse(new TextDecoder().decode(doc.stdout)) as DocJson;

// `deno doc` keys its nodes by absolute file URL; print the module as given.
const named = new Map(
  modules.map((m) => [new URL(m, `file://${Deno.cwd()}/`).href, m]),
);
const hasExample = (d: DocDeclaration): boolean =>
  d.jsDoc?.tags?.some((t) => t.kind === "example") ?? false;
const missing: string[] = [];
for (const [url, node] of Object.entries(json.nodes)) {
  for (const symbol of node.symbols) {
    const values = symbol.declarations.filter((d) => !TYPE_KINDS.has(d.kind));
    // An overloaded function documents its example on one declaration.
    if (values.length > 0 && !symbol.declarations.some(hasExample)) {
      missing.push(`${named.get(url) ?? url}: ${symbol.name}`);
    }
  }
}
for (const line of missing) console.log(line);
if (missing.length > 0) {
  console.error(
    `${missing.length} exported value(s) lack an @example (add one that runs under deno test --doc, or stop exporting it)`,
  );
  Deno.exit(1);
}
