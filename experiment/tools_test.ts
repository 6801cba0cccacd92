// The tools' options that only some models take are refused for the
// others, not ignored: `deno task sample --model ar --strategy confidence`
// (or `--steps 4`, `--every 3`) printed the same text as without them, and
// `--model bd3 --strategy confidence` too.
import { assertThrows } from "@std/assert";
import { AR, BD3, checkToolOptions, ConfigError, D3PM } from "./mod.ts";

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
