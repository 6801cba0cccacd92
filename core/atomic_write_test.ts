import { assertEquals, assertRejects } from "@std/assert";
import { writeFileAtomic } from "./atomic_write.ts";

Deno.test("writeFileAtomic() replaces a file and leaves no temporary file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/f.bin`;
  await Deno.writeTextFile(path, "old");
  await writeFileAtomic(path, Uint8Array.of(1, 2, 3));
  assertEquals(await Deno.readFile(path), Uint8Array.of(1, 2, 3));
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["f.bin"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFileAtomic() keeps the old file and removes its temporary file when the rename fails", async () => {
  const dir = await Deno.makeTempDir();
  // A directory in the way: the rename fails after the data was written.
  await Deno.mkdir(`${dir}/target/inner`, { recursive: true });
  await assertRejects(() => writeFileAtomic(`${dir}/target`, "new"));
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["target"]);
  assertEquals([...Deno.readDirSync(`${dir}/target`)].length, 1);
  await Deno.remove(dir, { recursive: true });
});
