import { assertEquals } from "@std/assert";
import { fileAbove, pathExists } from "./exists.ts";

Deno.test("fileAbove() names the file above a path, however deep, by the path's own spelling; none when every ancestor is a folder or one is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/d`);
    await Deno.writeTextFile(`${dir}/d/F`, "x");
    await Deno.symlink(`${dir}/d/F`, `${dir}/linkF`);
    await Deno.symlink(`${dir}/d`, `${dir}/linkD`);
    assertEquals(await fileAbove(`${dir}/d/F/run`), `${dir}/d/F`);
    assertEquals(await fileAbove(`${dir}/d/F/a/b/run`), `${dir}/d/F`);
    assertEquals(await fileAbove(`${dir}/d/./F/run`), `${dir}/d/./F`);
    // A link to a file stops the path too; one to a folder does not.
    assertEquals(await fileAbove(`${dir}/linkF/run`), `${dir}/linkF`);
    assertEquals(await fileAbove(`${dir}/linkD/F/run`), `${dir}/linkD/F`);
    // The path itself is not an ancestor.
    assertEquals(await fileAbove(`${dir}/d/F`), undefined);
    assertEquals(await fileAbove(`${dir}/d/run`), undefined);
    assertEquals(await fileAbove(`${dir}/none/F/run`), undefined);
    assertEquals(await pathExists(`${dir}/d/F`), true);
    // A relative path is read from the working folder.
    const cwd = Deno.cwd();
    Deno.chdir(`${dir}/d`);
    try {
      assertEquals(await fileAbove("F/run"), "F");
      assertEquals(await fileAbove("./F/run"), "./F");
    } finally {
      Deno.chdir(cwd);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
