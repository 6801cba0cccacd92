import { assertEquals } from "@std/assert";
import { checkDocLinks } from "./check_doc_links.ts";

Deno.test("check_doc_links: a missing file, a missing anchor and a stale repeat are reported; URLs, code, folders, GitHub anchors and <a id> pass", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/docs/sub`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/docs/b.md`,
      [
        "# B",
        "## What's `x` → y? (issue #28)",
        "## Again",
        "## Again",
        '<a id="custom"></a>',
        "```sh",
        "## not a heading",
        "```",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      `${dir}/docs/a.md`,
      [
        "[ok](b.md#whats-x--y-issue-28) [ok](b.md#again-1) [ok](b.md#custom)",
        "[ok](sub/) [ok](https://x.org/none.md) [ok](#a) `[code](nope.md)`",
        "[gone](c.md)",
        "[no anchor](b.md#again-2) [fenced](b.md#not-a-heading)",
        "```",
        "[in a fence](nope.md)",
        "```",
        "[ref]: ../docs/c.md",
        "# A",
      ].join("\n"),
    );
    const broken = await checkDocLinks([`${dir}/docs/a.md`]);
    assertEquals(broken.map((b) => [b.line, b.target]), [
      [3, "c.md"],
      [4, "b.md#again-2"],
      [4, "b.md#not-a-heading"],
      [8, "../docs/c.md"],
    ]);
    assertEquals(broken[0].problem, `${dir}/docs/c.md does not exist`);
    assertEquals(
      broken[1].problem,
      `${dir}/docs/b.md has no heading whose anchor is #again-2`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
