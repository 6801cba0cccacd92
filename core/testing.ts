/**
 * Skips that cannot pass silently. A test that needs something the machine
 * may lack (a WebGPU adapter, a CBLAS, PyTorch, a browser) asks
 * {@linkcode ignoreUnless}: where the thing exists the test runs; where it is
 * missing the test is ignored with its reason printed — unless the thing is
 * *required* here, and then the missing thing is an error, so the run fails
 * instead of reporting green with the test never run.
 *
 * What is required: the comma-separated names in `D3PM_REQUIRE` (`all`
 * requires everything); when that is unset and `CI=true`, the capabilities of
 * {@linkcode CI_REQUIRES} (what the project's CI installs); otherwise nothing.
 *
 * @example A capability nobody requires is skipped visibly
 * ```ts
 * import { ignoreUnless } from "@d3pm/core/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const saved = Deno.env.get("D3PM_REQUIRE");
 * Deno.env.delete("D3PM_REQUIRE");
 * assertEquals(ignoreUnless("example-capability", "not on this machine"), true);
 * if (saved !== undefined) Deno.env.set("D3PM_REQUIRE", saved);
 * ```
 *
 * Also {@linkcode packageSourceHash}, for tests that pin a package's build
 * hash, and {@linkcode tempDir}, a temporary folder that removes itself.
 *
 * @module
 */
import { sha256Hex } from "./sha256.ts";

/**
 * What `CI=true` requires when `D3PM_REQUIRE` is unset: what `.ci/run`
 * installs (`torch`: a Python with torch and transformers, from
 * `tools/setup_hf.sh`; `chromium`: Debian's, from `tools/setup.sh`;
 * `slurm`: a one-node cluster, installed and started as root by
 * `tools/slurm_local.sh start`, which the Slurm sweep test calls).
 *
 * @example Under `CI=true` what CI installs is required, nothing else
 * ```ts
 * import { CI_REQUIRES, isRequired } from "@d3pm/core/testing";
 * import { assert, assertEquals } from "@std/assert";
 * assert(CI_REQUIRES.includes("webgpu") && !CI_REQUIRES.includes("example-capability"));
 * const saved = { CI: Deno.env.get("CI"), D3PM_REQUIRE: Deno.env.get("D3PM_REQUIRE") };
 * Deno.env.delete("D3PM_REQUIRE");
 * Deno.env.set("CI", "true");
 * assertEquals([isRequired("webgpu"), isRequired("example-capability")], [true, false]);
 * for (const [name, value] of Object.entries(saved)) {
 *   if (value === undefined) Deno.env.delete(name);
 *   else Deno.env.set(name, value);
 * }
 * ```
 */
export const CI_REQUIRES: readonly string[] = [
  "webgpu",
  "blas",
  "wasm",
  "torch",
  "chromium",
  "slurm",
];

/**
 * A required capability is missing.
 *
 * @example Its message names the capability, why, and what requires it
 * ```ts
 * import { ignoreUnless, MissingCapabilityError } from "@d3pm/core/testing";
 * import { assertEquals, assertThrows } from "@std/assert";
 * const saved = Deno.env.get("D3PM_REQUIRE");
 * Deno.env.set("D3PM_REQUIRE", "torch");
 * const e = assertThrows(
 *   () => ignoreUnless("torch", "no python3 with torch"),
 *   MissingCapabilityError,
 * );
 * if (saved === undefined) Deno.env.delete("D3PM_REQUIRE");
 * else Deno.env.set("D3PM_REQUIRE", saved);
 * assertEquals(e.name, "MissingCapabilityError");
 * assertEquals(
 *   e.message,
 *   'required capability "torch" is missing: no python3 with torch (required by D3PM_REQUIRE=torch; unset it to skip instead)',
 * );
 * ```
 */
export class MissingCapabilityError extends Error {
  /**
   * An error naming the capability, why it is missing and what requires it.
   *
   * @param capability The capability's name.
   * @param reason Why it is missing.
   */
  constructor(capability: string, reason: string) {
    super(
      `required capability "${capability}" is missing: ${reason} (required by ${requiredBy()}; unset it to skip instead)`,
    );
    this.name = "MissingCapabilityError";
  }
}

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function requiredBy(): string {
  const list = env("D3PM_REQUIRE");
  return list !== undefined ? `D3PM_REQUIRE=${list}` : "CI=true";
}

/**
 * Whether `capability` must exist on this machine.
 *
 * @param capability A name such as `webgpu`, `blas`, `torch`, `chromium`.
 * @returns True when `D3PM_REQUIRE` names it (or is `all`), or when
 * `D3PM_REQUIRE` is unset, `CI=true` and {@linkcode CI_REQUIRES} names it.
 *
 * @example
 * ```ts
 * import { isRequired } from "@d3pm/core/testing";
 * import { assertEquals } from "@std/assert";
 *
 * const saved = Deno.env.get("D3PM_REQUIRE");
 * Deno.env.set("D3PM_REQUIRE", "webgpu,torch");
 * assertEquals([isRequired("torch"), isRequired("blas")], [true, false]);
 * if (saved === undefined) Deno.env.delete("D3PM_REQUIRE");
 * else Deno.env.set("D3PM_REQUIRE", saved);
 * ```
 */
export function isRequired(capability: string): boolean {
  const list = env("D3PM_REQUIRE");
  if (list !== undefined) {
    const names = list.split(",").map((s) => s.trim());
    return names.includes("all") || names.includes(capability);
  }
  return env("CI") === "true" && CI_REQUIRES.includes(capability);
}

/**
 * The `ignore` flag of a test that needs `capability`.
 *
 * @param capability The capability's name.
 * @param missing Why it is missing, or `null`/`undefined` when it exists.
 * @returns False when it exists; true (after printing the reason) when it is
 * missing and not required.
 * @throws {MissingCapabilityError} When it is missing and required.
 *
 * @example
 * ```ts
 * import { ignoreUnless, MissingCapabilityError } from "@d3pm/core/testing";
 * import { assertEquals, assertThrows } from "@std/assert";
 *
 * const saved = Deno.env.get("D3PM_REQUIRE");
 * Deno.env.set("D3PM_REQUIRE", "webgpu");
 * assertEquals(ignoreUnless("webgpu", null), false);
 * assertThrows(() => ignoreUnless("webgpu", "no adapter"), MissingCapabilityError);
 * if (saved === undefined) Deno.env.delete("D3PM_REQUIRE");
 * else Deno.env.set("D3PM_REQUIRE", saved);
 * ```
 */
export function ignoreUnless(
  capability: string,
  missing: string | null | undefined,
): boolean {
  if (missing === null || missing === undefined) return false;
  if (isRequired(capability)) {
    throw new MissingCapabilityError(capability, missing);
  }
  console.warn(`skipping tests that need ${capability}: ${missing}`);
  return true;
}

/** The path of `url` from the folder `dir` (`../webgpu/_plan.ts`). */
function relativeName(dir: URL, url: URL): string {
  const from = dir.pathname.split("/").filter(Boolean);
  const to = url.pathname.split("/").filter(Boolean);
  let common = 0;
  while (
    common < from.length && common < to.length - 1 &&
    from[common] === to[common]
  ) common++;
  return [...Array(from.length - common).fill(".."), ...to.slice(common)]
    .join("/");
}

/** Options of {@linkcode packageSourceHash}. */
export interface SourceHashOptions {
  /** File names left out besides the tests and the excluded (the module holding the pinned hash). */
  leftOut?: readonly string[];
  /** Modules outside the folder hashed with its own, named by their path from it. */
  also?: readonly URL[];
}

/** What {@linkcode packageSourceHash} hashed. */
export interface PackageSources {
  /** SHA-256 over the names and texts, in name order. */
  hash: string;
  /** The modules hashed, in name order. */
  names: string[];
}

/**
 * The SHA-256 of a package's own code as it publishes it: every `.ts`
 * module directly in its folder, except tests (`*_test.ts`), what its
 * `deno.json` leaves out of publishing (`publish.exclude`, by file name),
 * and `leftOut` (the module holding the pinned hash); names and texts (line
 * endings as committed, LF) in name order. A test compares it with the
 * package's committed constant, so any change to the code changes the
 * build's name (`ENGINE_SHA256` of `@d3pm/cpu` and `@d3pm/webgpu`: cache
 * keys of what their engines train).
 *
 * Modules of other packages that the code runs (`also`: the CPU engine runs
 * `@d3pm/webgpu`'s plan) are hashed with it, named by their path from `dir`
 * (`../webgpu/_plan.ts`).
 *
 * @param dir The package's folder (`new URL(".", import.meta.url)`).
 * @param options File names left out besides the tests and the excluded
 *   (`leftOut`), and modules outside `dir` hashed with its own (`also`).
 * @returns The hash and the modules it covers.
 *
 * @example
 * ```ts
 * import { packageSourceHash } from "@d3pm/core/testing";
 * import { assert, assertMatch } from "@std/assert";
 * const { hash, names } = await packageSourceHash(new URL("./", import.meta.resolve("@d3pm/core")));
 * assertMatch(hash, /^[0-9a-f]{64}$/);
 * assert(names.includes("sha256.ts") && !names.some((n) => n.endsWith("_test.ts")));
 * const more = await packageSourceHash(new URL("./", import.meta.resolve("@d3pm/core")), {
 *   also: [new URL("../cli/parse.ts", import.meta.resolve("@d3pm/core"))],
 * });
 * assert(more.names.includes("../cli/parse.ts") && more.hash !== hash);
 * ```
 */
export async function packageSourceHash(
  dir: URL,
  options: SourceHashOptions = {},
): Promise<PackageSources> {
  const { leftOut = [], also = [] } = options;
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", dir)),
  ) as { publish?: { exclude?: string[] } };
  const excluded = new Set(leftOut);
  for (const pattern of config.publish?.exclude ?? []) excluded.add(pattern);
  const files: { name: string; text: string }[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const name = entry.name;
    if (!entry.isFile || !name.endsWith(".ts")) continue;
    if (name.endsWith("_test.ts") || excluded.has(name)) continue;
    const text = (await Deno.readTextFile(new URL(name, dir)))
      .replaceAll("\r\n", "\n");
    files.push({ name, text });
  }
  for (const url of also) {
    const name = relativeName(dir, url);
    const text = (await Deno.readTextFile(url)).replaceAll("\r\n", "\n");
    files.push({ name, text });
  }
  files.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const parts: string[] = [];
  for (const { name, text } of files) parts.push(name, text);
  return {
    hash: sha256Hex(parts.join("\n\u0000\n")),
    names: files.map((f) => f.name),
  };
}

/** A temporary folder that removes itself: see {@linkcode tempDir}. */
export interface TempDir extends AsyncDisposable {
  /** The folder's path. */
  readonly path: string;
}

/**
 * A new empty folder in the temporary folder (`TMPDIR`), removed with all it
 * holds when its `await using` binding goes out of scope — when the test
 * returns or throws — so that a test run leaves nothing behind.
 *
 * @param options As `Deno.makeTempDir`'s (`prefix`, `suffix`, `dir`).
 * @returns The folder; `path` is its path.
 *
 * @example A folder and what was written in it are gone after the block
 * ```ts
 * import { tempDir } from "@d3pm/core/testing";
 * import { assertEquals } from "@std/assert";
 * let path = "";
 * {
 *   await using tmp = await tempDir();
 *   path = tmp.path;
 *   await Deno.mkdir(`${path}/run`);
 *   await Deno.writeTextFile(`${path}/run/config.json`, "{}");
 * }
 * assertEquals(await Deno.stat(path).then(() => true, () => false), false);
 * ```
 */
export async function tempDir(
  options?: Deno.MakeTempOptions,
): Promise<TempDir> {
  const path = await Deno.makeTempDir(options);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    },
  };
}
