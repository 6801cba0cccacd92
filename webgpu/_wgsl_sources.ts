// The sources WGSL_SHA256 (wgsl_hash.ts) covers, read from disk by its test
// (not published: a package does not read its own files).

import { sha256Hex } from "@d3pm/core";

/**
 * The engine's WGSL: every module of webgpu/ (tests aside) that holds a
 * compute shader (`@compute`) or compiles one (`createShaderModule`), so a new
 * kernel file is covered without a list to keep.
 */
export async function wgslSources(): Promise<{ name: string; text: string }[]> {
  const dir = new URL(".", import.meta.url);
  const out: { name: string; text: string }[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const name = entry.name;
    if (!entry.isFile || !name.endsWith(".ts") || name.endsWith("_test.ts")) {
      continue;
    }
    // Test helpers, the file that holds the hash, and this one (no WGSL).
    if (
      name.startsWith("_test_") || name === "wgsl_hash.ts" ||
      name === "_wgsl_sources.ts"
    ) continue;
    // Line endings as committed, whatever the checkout made of them.
    const text = (await Deno.readTextFile(new URL(name, dir)))
      .replaceAll("\r\n", "\n");
    if (/@compute|createShaderModule/.test(text)) out.push({ name, text });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** SHA-256 over the sources' names and texts, in name order. */
export async function wgslSourceHash(): Promise<string> {
  const parts: string[] = [];
  for (const { name, text } of await wgslSources()) parts.push(name, text);
  return sha256Hex(parts.join("\n\u0000\n"));
}
