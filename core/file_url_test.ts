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

/** Run `f` with `Deno.build.os` reading `os`, restored after. */
function asOs<T>(os: typeof Deno.build.os, f: () => T): T {
  const build = Deno.build;
  Object.defineProperty(Deno, "build", { value: { ...build, os } });
  try {
    return f();
  } finally {
    Object.defineProperty(Deno, "build", { value: build });
  }
}

Deno.test("toFileUrl() encodes every segment below the root, the first too: # and ? there are no URL syntax", () => {
  for (const path of ["/h#x?.json", "/a b", "/c:/x", "/a/c:/x"]) {
    assertEquals(fromFileUrl(toFileUrl(path)), path);
  }
  assertEquals(toFileUrl("/h#x?.json").href, "file:///h%23x%3F.json");
  assertEquals(toFileUrl("/c:/x").href, "file:///c%3A/x");
  assertEquals(fromFileUrl("file:///C:/x"), "/C:/x", "a drive only on Windows");
});

Deno.test("toFileUrl() and fromFileUrl() keep a backslash and a c: segment as letters of a name but on Windows", async () => {
  assertEquals(toFileUrl("/tmp/a\\b.json").href, "file:///tmp/a%5Cb.json");
  assertEquals(fromFileUrl(toFileUrl("/tmp/a\\b.json")), "/tmp/a\\b.json");
  assertEquals(toFileUrl("c:/x").href, toFileUrl(`${Deno.cwd()}/c:/x`).href);
  const root = await Deno.makeTempDir();
  try {
    await writeFileAtomic(toFileUrl(`${root}/a\\b.json`), "x");
    assertEquals([...Deno.readDirSync(root)].map((e) => e.name), ["a\\b.json"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("toFileUrl() and fromFileUrl() on Windows: backslashes are separators, the drive is kept, the path comes back with backslashes", () => {
  asOs("windows", () => {
    for (const path of ["C:\\a b\\é.json", "c:\\h#x?.json"]) {
      assertEquals(fromFileUrl(toFileUrl(path)), path);
    }
    assertEquals(
      toFileUrl("C:\\a b\\é.json").href,
      "file:///C:/a%20b/%C3%A9.json",
    );
    assertEquals(toFileUrl("C:/x").href, "file:///C:/x");
    assertEquals(toFileUrl("/C:/x").href, "file:///C:/x");
    assertEquals(toFileUrl("/a/C:/x").href, "file:///a/C%3A/x");
    assertEquals(fromFileUrl("file:///D:/x/y%20z"), "D:\\x\\y z");
    assertEquals(fromFileUrl("file:///x/y"), "/x/y", "no drive: as it is");
  });
});
