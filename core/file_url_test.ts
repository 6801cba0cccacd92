import { assertEquals } from "@std/assert";
import { fromFileUrl, toFileUrl } from "./file_url.ts";
import { writeFileAtomic } from "./atomic_write.ts";

/** Names a path may hold that a URL reads as syntax or encodes. */
const NAMES = ["sp ace.json", "é.json", "p%41q.json", "h#x?.json", "100%.json"];

Deno.test("toFileUrl() and fromFileUrl() give back a path with spaces, non-ASCII, %, # and ?", () => {
  for (const name of NAMES) {
    const path = `/tmp/d ir/${name}`;
    assertEquals(fromFileUrl(toFileUrl(path)), path);
  }
  assertEquals(
    fromFileUrl(toFileUrl("rel/é.json")),
    `${Deno.cwd()}/rel/é.json`,
  );
});

Deno.test("writeFileAtomic() writes a file: URL's file under its own name (spaces, non-ASCII, %, #), not the percent-encoded one", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/sp ace é`;
    await Deno.mkdir(dir);
    for (const name of NAMES) {
      await writeFileAtomic(toFileUrl(`${dir}/${name}`), name);
      assertEquals(await Deno.readTextFile(`${dir}/${name}`), name);
    }
    assertEquals(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      [...NAMES].sort(),
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
