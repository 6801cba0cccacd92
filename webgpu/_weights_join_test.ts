import { assertEquals, assertThrows } from "@std/assert";
import { initialWeights, preset } from "@d3pm/transformer";
import type { StoredTensor } from "@d3pm/core";
import { joinWeights, parameterTable, splitWeights } from "./plan.ts";

const config = preset("micro", { vocabSize: 16, contextLength: 8 });
const table = parameterTable(config);
const engineFail = (message: string): never => {
  throw new RangeError(`SomeEngine: ${message}`);
};

function refused(
  weights: Map<string, StoredTensor>,
  message: string,
): void {
  assertThrows(
    () => joinWeights(table, weights, { what: "setWeights", fail: engineFail }),
    RangeError,
    `SomeEngine: setWeights: ${message}`,
  );
}

Deno.test("joinWeights lays named tensors out as the table and splitWeights gives them back, in canonical order", () => {
  const weights = initialWeights(config, 1);
  const flat = joinWeights(table, weights, { what: "weights" });
  assertEquals(flat.length, table.size);
  const e = table.byName.get("wte.weight")!;
  assertEquals(
    flat.subarray(e.offset, e.offset + e.size),
    weights.get("wte.weight")!.data,
  );
  const back = splitWeights(config, flat);
  assertEquals([...back.keys()], [...weights.keys()]);
  assertEquals(back, weights);
});

Deno.test("joinWeights names an unexpected, missing, misshapen or miscounted tensor through the engine's fail", () => {
  const extra = initialWeights(config, 1);
  extra.set("lm_head.bias", { shape: [16], data: new Float32Array(16) });
  refused(extra, 'unexpected tensor "lm_head.bias" for this config');

  const missing = initialWeights(config, 1);
  missing.delete("ln_f.weight");
  refused(missing, 'missing tensor "ln_f.weight"');

  const shape = initialWeights(config, 1);
  const wte = shape.get("wte.weight")!;
  shape.set("wte.weight", { shape: [...wte.shape].reverse(), data: wte.data });
  refused(shape, '"wte.weight" has shape [');

  // The right shape over too few values: refused, not left half zero.
  const count = initialWeights(config, 1);
  const ln = count.get("ln_f.weight")!;
  count.set("ln_f.weight", { shape: ln.shape, data: ln.data.subarray(1) });
  refused(
    count,
    `"ln_f.weight" holds ${
      ln.data.length - 1
    } values, expected ${ln.data.length}`,
  );
});
