/**
 * The OpenBLAS core type that matches a set of x86 CPU flags, for virtual CPUs
 * that OpenBLAS's own detection gets wrong (Debian's 0.3.21 takes some AVX-512
 * guests for a Prescott and runs ~5× slower).
 *
 * @param flags The `flags` line of `/proc/cpuinfo`, split on spaces.
 * @returns `SKYLAKEX`, `HASWELL`, `SANDYBRIDGE`, or `undefined` to leave the
 * choice to OpenBLAS.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { coretypeForFlags } from "@d3pm/backend/cblas";
 *
 * assertEquals(coretypeForFlags(new Set(["avx", "avx2", "fma"])), "HASWELL");
 * ```
 */
export function coretypeForFlags(
  flags: ReadonlySet<string>,
): string | undefined {
  if (
    flags.has("avx512f") && flags.has("avx512bw") && flags.has("avx512vl") &&
    flags.has("avx512dq")
  ) return "SKYLAKEX";
  if (flags.has("avx2") && flags.has("fma")) return "HASWELL";
  if (flags.has("avx")) return "SANDYBRIDGE";
  return undefined;
}

/**
 * The CPU flags of the first processor in `/proc/cpuinfo`, or `undefined`
 * where that file cannot be read (not Linux, or no read permission).
 *
 * @returns The set of flags, or `undefined`.
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { readCpuFlags } from "@d3pm/backend/cblas";
 *
 * const flags = readCpuFlags();
 * if (Deno.build.os === "linux" && Deno.build.arch === "x86_64") {
 *   assert(flags?.has("sse2"));
 * }
 * ```
 */
export function readCpuFlags(): Set<string> | undefined {
  try {
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    const line = text.split("\n").find((l) => /^flags\s*:/.test(l));
    if (line === undefined) return undefined;
    return new Set(line.slice(line.indexOf(":") + 1).trim().split(/\s+/));
  } catch {
    return undefined;
  }
}

/**
 * OpenBLAS x86-64 kernel sets (`OPENBLAS_CORETYPE` values of its
 * `DYNAMIC_ARCH` builds) and the CPU flags each needs, newest first: one per
 * distinct family of kernels. Zen runs the Haswell kernels and Cooperlake the
 * SkylakeX ones (measured: bit-identical results), so neither is listed.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { X86_CORETYPES } from "@d3pm/backend/cblas";
 *
 * assertEquals(X86_CORETYPES.at(-1)?.name, "Nehalem");
 * ```
 */
export const X86_CORETYPES: readonly {
  name: string;
  needs: readonly string[];
}[] = [
  { name: "SkylakeX", needs: ["avx512f", "avx512bw", "avx512vl", "avx512dq"] },
  { name: "Haswell", needs: ["avx2", "fma"] },
  { name: "Sandybridge", needs: ["avx"] },
  { name: "Nehalem", needs: ["sse4_2"] },
];

/**
 * The OpenBLAS kernel sets of {@linkcode X86_CORETYPES} a CPU with these
 * flags can execute, newest first.
 *
 * @param flags The `flags` line of `/proc/cpuinfo`, split on spaces.
 * @returns Their names, e.g. `["Haswell", "Sandybridge", "Nehalem"]`.
 *
 * @example An AVX2 machine without AVX-512
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { runnableCoretypes } from "@d3pm/backend/cblas";
 *
 * const flags = new Set(["sse4_2", "avx", "avx2", "fma"]);
 * assertEquals(runnableCoretypes(flags), ["Haswell", "Sandybridge", "Nehalem"]);
 * ```
 */
export function runnableCoretypes(flags: ReadonlySet<string>): string[] {
  return X86_CORETYPES.filter((c) => c.needs.every((f) => flags.has(f)))
    .map((c) => c.name);
}
