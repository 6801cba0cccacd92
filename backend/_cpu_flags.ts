/**
 * The OpenBLAS core type that matches a set of x86 CPU flags, for virtual CPUs
 * that OpenBLAS's own detection gets wrong (Debian's 0.3.21 takes some AVX-512
 * guests for a Prescott and runs ~5× slower).
 *
 * @param flags The `flags` line of `/proc/cpuinfo`, split on spaces.
 * @returns `SKYLAKEX`, `HASWELL`, `SANDYBRIDGE`, or `undefined` to leave the
 * choice to OpenBLAS.
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
