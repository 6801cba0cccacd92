import { assertEquals } from "@std/assert";
import { sha256Hex } from "@d3pm/core";
import { ignoreUnless } from "@d3pm/core/testing";
import { build, clangVersion, sourceHash } from "./_build.ts";
import { COMPILER, SOURCE_SHA256, WASM_BASE64, WASM_SHA256 } from "./_wasm.ts";

const committed = Uint8Array.from(atob(WASM_BASE64), (c) => c.charCodeAt(0));

Deno.test("the committed kernel module was built from the committed csrc/ and flags", async () => {
  assertEquals(
    await sourceHash(),
    SOURCE_SHA256,
    "cpu/csrc or the build flags changed since the module was built: run `deno task build:cpu`",
  );
  assertEquals(
    sha256Hex(committed),
    WASM_SHA256,
    "cpu/_wasm.ts was edited by hand",
  );
});

const clang = await clangVersion();
Deno.test({
  name: "rebuilding the kernel module from csrc/ gives the committed bytes",
  ignore: ignoreUnless(
    "clang",
    clang === null
      ? "no clang on PATH (apt-get install clang lld)"
      : clang !== COMPILER
      ? `clang is "${clang}", the module was built by "${COMPILER}"`
      : null,
  ),
  fn: async () => {
    const rebuilt = await build();
    assertEquals(sha256Hex(rebuilt), WASM_SHA256);
  },
});
