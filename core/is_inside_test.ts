import { assertEquals } from "@std/assert";
import { isInside } from "./is_inside.ts";

Deno.test("isInside() takes a folder as inside itself, with or without a trailing slash on either side", () => {
  for (
    const [root, path] of [
      ["/a/b", "/a/b"],
      ["/a/b/", "/a/b"],
      ["/a/b", "/a/b/"],
      ["/a//b", "/a/b/."],
      ["/", "/"],
      ["a/b", "a/b/"],
    ]
  ) {
    assertEquals(isInside(root, path), true, `${root} ${path}`);
  }
});

Deno.test("isInside() takes what lies below a folder, and not a sibling whose name it begins", () => {
  assertEquals(isInside("/a/b", "/a/b/c"), true);
  assertEquals(isInside("/a/b/", "/a/b/c/d"), true);
  assertEquals(isInside("/", "/x"), true);
  assertEquals(isInside("/a/b", "/a/bc"), false);
  assertEquals(isInside("/a/b", "/a/bc/d"), false);
  assertEquals(isInside("/a/b/", "/a/bc"), false);
  assertEquals(isInside("/a/b", "/a"), false, "a parent is not inside");
  assertEquals(isInside("/a/b/c", "/a/b"), false);
});

Deno.test("isInside() resolves . and .. as text: a path that climbs out is outside", () => {
  assertEquals(isInside("/a/b", "/a/b/../c"), false);
  assertEquals(isInside("/a/b", "/a/b/c/.."), true);
  assertEquals(isInside("/a/b", "/a/c/../b/d"), true);
  assertEquals(isInside("/a/b/..", "/a/x"), true, "the root /a");
  assertEquals(isInside("/a", "/../../a/x"), true, "nothing is above /");
  assertEquals(isInside("a", "a/../../a/x"), false, "../a is not a");
  assertEquals(isInside("..", "../x"), true);
  assertEquals(isInside("..", "../.."), false, "../.. is above ..");
});

Deno.test("isInside() never takes a path that starts with .. as inside a relative root that is no folder below (., a/..)", () => {
  assertEquals(isInside(".", "../x"), false);
  assertEquals(isInside(".", ".."), false);
  assertEquals(isInside("a/..", "../secret"), false);
  assertEquals(isInside("", "../x"), false);
  assertEquals(isInside(".", "x/y"), true);
  assertEquals(isInside("a/..", "./b"), true);
});

Deno.test("isInside() takes back a relative path's .. only after a name, never after a kept ..", () => {
  // `../..` is two levels up: `../x` is one level up, beside it, not inside.
  assertEquals(isInside("../..", "../x"), false);
  assertEquals(isInside("../../a", "../../a/b"), true);
  // `../a/..` is `..` (the `a` taken back, the first `..` kept).
  assertEquals(isInside("../a/..", "../b"), true);
  assertEquals(isInside("x/../..", "../b"), true);
});

Deno.test("isInside() never takes an absolute path inside a relative one, nor the other way round", () => {
  assertEquals(isInside("a", "/a/b"), false);
  assertEquals(isInside("/a", "a/b"), false);
});

Deno.test("isInside() follows no link: a link inside the folder to one outside is inside as a path, outside once made real", async () => {
  const tmp = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.mkdir(`${tmp}/root`);
    await Deno.mkdir(`${tmp}/elsewhere`);
    await Deno.symlink(`${tmp}/elsewhere`, `${tmp}/root/link`);
    const link = `${tmp}/root/link/file`;
    assertEquals(isInside(`${tmp}/root`, link), true);
    await Deno.writeTextFile(`${tmp}/elsewhere/file`, "");
    assertEquals(isInside(`${tmp}/root`, await Deno.realPath(link)), false);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
