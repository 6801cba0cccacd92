// configDifferences() on configurations that are not objects: compared
// whole, as one difference keyed "", never key by key.
import { assertEquals } from "@std/assert";
import { configDifferences } from "./config_diff.ts";

Deno.test('configDifferences() compares a number, a string or an array whole (key ""), and a missing one as {}', () => {
  assertEquals(configDifferences(1, {}), [{ key: "", saved: 1, now: {} }]);
  assertEquals(configDifferences({}, "ab"), [
    { key: "", saved: {}, now: "ab" },
  ]);
  assertEquals(configDifferences([1, 2], [1, 3]), [
    { key: "", saved: [1, 2], now: [1, 3] },
  ]);
  assertEquals(configDifferences([1], [1]), []);
  assertEquals(configDifferences(undefined, { a: 1 }), [
    { key: "a", saved: undefined, now: 1 },
  ]);
  assertEquals(configDifferences(null, {}), []);
});
