import { assertEquals, assertMatch, assertRejects } from "@std/assert";
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

Deno.test("writeFileAtomic() puts its tag in the temporary file's name while it writes (<name>.<tag>.<uuid>.tmp), so a sweep can tell whose it is", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const seen: string[] = [];
    await writeFileAtomic(
      `${dir}/c.tok`,
      (function* () {
        yield Uint8Array.of(1);
        seen.push(...[...Deno.readDirSync(dir)].map((e) => e.name));
        yield Uint8Array.of(2);
      })(),
      { tag: "pid42-7-ns9" },
    );
    assertEquals(seen.length, 1);
    assertMatch(seen[0], /^c\.tok\.pid42-7-ns9\.[0-9a-f-]{36}\.tmp$/);
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["c.tok"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
