import { assertEquals, assertStrictEquals, assertThrows } from "@std/assert";
import { PlanCache } from "./_plan_cache.ts";

Deno.test("PlanCache builds a plan once per key and drops the oldest built beyond capacity", () => {
  const released: string[] = [];
  let builds = 0;
  const cache = new PlanCache<{ key: string }>(2, (p) => released.push(p.key));
  const build = (key: string) => () => {
    builds++;
    return { key };
  };
  const a = cache.get("a", build("a"));
  assertStrictEquals(cache.get("a", build("a")), a); // a hit builds nothing
  cache.get("b", build("b"));
  assertEquals([builds, cache.size, released], [2, 2, []]);
  cache.get("a", build("a")); // a hit does not make "a" newer
  cache.get("c", build("c"));
  assertEquals(released, ["a"]);
  assertEquals(cache.size, 2);
  cache.get("a", build("a")); // rebuilt, and now "b" is the oldest
  assertEquals([builds, released], [4, ["a", "b"]]);
  cache.clear(); // the engine frees every buffer itself on dispose
  assertEquals([cache.size, released], [0, ["a", "b"]]);
});

Deno.test("PlanCache rejects a capacity below 1", () => {
  assertThrows(
    () => new PlanCache(0, () => {}),
    RangeError,
    "capacity must be an integer ≥ 1, got 0",
  );
});
