// The tools' options that only some models take are refused for the
// others, not ignored: `deno task sample --model ar --strategy confidence`
// (or `--steps 4`, `--every 3`) printed the same text as without them, and
// `--model bd3 --strategy confidence` too.
import { assertEquals, assertThrows } from "@std/assert";
import {
  AR,
  BD3,
  checkToolOptions,
  ConfigError,
  D3PM,
  promptIds,
} from "./mod.ts";
import { ByteTokenizer } from "@d3pm/tokenizer";

Deno.test("checkToolOptions refuses --strategy, --every and --steps for a model that would ignore them", () => {
  const none = undefined as never;
  const refused = (
    c: Parameters<typeof checkToolOptions>[0],
    options: Parameters<typeof checkToolOptions>[2],
    message: string,
  ) =>
    assertThrows(
      () => checkToolOptions(c, none, options),
      ConfigError,
      message,
    );
  refused(
    AR,
    { strategy: "confidence" },
    "Option --strategy applies only to a model that generates by unmasking (d3pm, mlm); --model ar does not",
  );
  refused(AR, { every: 3 }, "Option --every applies only");
  refused(
    AR,
    { steps: 4 },
    "Option --steps applies only to a model that generates in steps (d3pm, mlm, bd3); --model ar does not",
  );
  // Block diffusion takes steps per block, at most its T, but no strategy.
  const bd3 = {
    ...BD3,
    blockUnmasking: { ...BD3.blockUnmasking!, steps: () => 50 },
  };
  refused(bd3, { strategy: "ancestral" }, "--model bd3 does not");
  refused(bd3, { every: 1 }, "Option --every applies only");
  refused(
    bd3,
    { steps: 51 },
    "Option --steps must be an integer in [1, 50] (the model's diffusion steps per block), got 51",
  );
  checkToolOptions(bd3, none, { steps: 50 });
  // What each model takes passes; so does nothing.
  checkToolOptions(D3PM, none, { steps: 4, strategy: "confidence", every: 2 });
  checkToolOptions(AR, none, {});
});

// A blank that is not well formed was kept as text: `a[MASK] b[MASK*-1]`
// filled one blank and left "[MASK*-1]" in the row as bytes, and
// `ab[MASK*3.5]cd` alone said "the text has no blank".
Deno.test("blanksOf refuses a malformed blank instead of keeping it as text", async () => {
  const { blanksOf } = await import("./mod.ts");
  const { ByteTokenizer } = await import("@d3pm/tokenizer");
  const { assertEquals } = await import("@std/assert");
  const options = { tokenizer: new ByteTokenizer(), maskId: 259, length: 32 };
  for (const bad of ["-1", "1e9", "0x3", "3.5", "", " 2"]) {
    assertThrows(
      () => blanksOf(`a[MASK] b[MASK*${bad}]c`, options),
      ConfigError,
      `[MASK*${bad}]: the count must be an integer in [1, 32], in digits`,
    );
  }
  for (const text of ["a[MASK] b[MASK*2", "a[MASK] [MASK", "[MASK[MASK]"]) {
    assertThrows(
      () => blanksOf(text, options),
      ConfigError,
      "The text has a malformed blank at",
    );
  }
  assertEquals([...blanksOf("[MASK*2]x[MASK]", options)], [259, 259, 120, 259]);
});

// `POST /api/generate {"prompt": "\ud800x"}` (valid JSON) generated from
// [239, 191, 189, 120]: U+FFFD, not the prompt sent, with no word.
Deno.test("promptIds refuses a prompt holding a lone surrogate in one line; a pair, an emoji, is text", () => {
  const tokenizer = new ByteTokenizer();
  const options = { tokenizer, length: 32, causal: false };
  for (
    const [text, at, unit] of [["\ud800x", 0, "D800"], [
      "ab\udfff",
      2,
      "DFFF",
    ]] as const
  ) {
    assertThrows(
      () => promptIds(text, options),
      ConfigError,
      `The prompt holds a lone UTF-16 surrogate at character ${at} (U+${unit}): it is not text and would be read as U+FFFD; send well-formed Unicode`,
    );
  }
  assertEquals([...promptIds("\ud83d\ude00", options)], [240, 159, 152, 128]);
});
