// The sources ENGINE_SHA256 (engine_hash.ts) covers, read from disk by its
// test (not published: a package does not read its own files).

import { sha256Hex } from "@d3pm/core";

// What the package leaves out of its published files besides the tests
// (deno.json's publish.exclude), and the file that holds the hash.
const LEFT_OUT = new Set(["engine_hash.ts"]);

/**
 * The engine's code: every module of webgpu/ it publishes — its WGSL and the
 * host code that picks, sizes, packs and orders the dispatches, all of which
 * decide the float rounding of what it computes. Tests and test helpers
 * (deno.json's publish.exclude) and `engine_hash.ts` are left out.
 */
export async function engineSources(): Promise<
  { name: string; text: string }[]
> {
  const dir = new URL(".", import.meta.url);
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", dir)),
  ) as { publish?: { exclude?: string[] } };
  const excluded = new Set(LEFT_OUT);
  for (const pattern of config.publish?.exclude ?? []) {
    if (pattern !== "**/*_test.ts") excluded.add(pattern);
  }
  const out: { name: string; text: string }[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const name = entry.name;
    if (!entry.isFile || !name.endsWith(".ts")) continue;
    if (name.endsWith("_test.ts") || excluded.has(name)) continue;
    // Line endings as committed, whatever the checkout made of them.
    const text = (await Deno.readTextFile(new URL(name, dir)))
      .replaceAll("\r\n", "\n");
    out.push({ name, text });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** SHA-256 over the sources' names and texts, in name order. */
export async function engineSourceHash(): Promise<string> {
  const parts: string[] = [];
  for (const { name, text } of await engineSources()) parts.push(name, text);
  return sha256Hex(parts.join("\n\u0000\n"));
}
