import {
  assert,
  assertEquals,
  assertIsError,
  assertMatch,
  assertRejects,
} from "@std/assert";
import { within } from "./_within_test_util.ts";
import {
  BoundedReadError,
  formatBytes,
  MAX_TEXT_BYTES,
  notRegularFile,
  readBounded,
  readJsonBounded,
  readTextBounded,
} from "./mod.ts";

Deno.test("readBounded() refuses FIFOs and devices at once, without reading or waiting", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    // Within 5 s, the FIFO's reader released after: a reader that opens it
    // fails the test instead of hanging it.
    const fifo = await within(
      5000,
      () => readBounded(`${dir}/fifo`, { limit: 1 << 20, what: "lock" }),
      `${dir}/fifo`,
    );
    if (fifo === "timeout" || !("error" in fifo)) {
      throw new Error(`a FIFO read: ${JSON.stringify(fifo)}`);
    }
    assertIsError(
      fifo.error,
      BoundedReadError,
      `Cannot read ${dir}/fifo: it is a FIFO (expected a lock, a regular file)`,
    );
    await Deno.symlink("/dev/zero", `${dir}/zero`);
    await assertRejects(
      () => readJsonBounded(`${dir}/zero`, { limit: 1 << 20 }),
      BoundedReadError,
      "it is a character device",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readBounded() stops a gzip bomb at the limit of what it inflates to", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // 64 MiB of zeros: about 64 KiB of gzip.
    const gz = await new Response(
      new Blob([new Uint8Array(64 << 20)]).stream()
        .pipeThrough(new CompressionStream("gzip")),
    ).bytes();
    await Deno.writeFile(`${dir}/bomb.gz`, gz);
    await assertRejects(
      () =>
        readBounded(`${dir}/bomb.gz`, {
          limit: 1 << 20,
          what: "training text",
          gunzip: true,
        }),
      BoundedReadError,
      "inflates to more than the 1.0 MiB a training text may be",
    );
    const small = await readBounded(`${dir}/bomb.gz`, {
      limit: 64 << 20,
      gunzip: true,
    });
    assertEquals(small.length, 64 << 20);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readBounded() bounds a file whose size the system does not report", async () => {
  // /proc files report size 0 and are read up to the limit, not past it.
  await assertRejects(
    () => readBounded("/proc/self/maps", { limit: 10 }),
    BoundedReadError,
    "is larger than the 10 B a file may be",
  );
});

Deno.test("notRegularFile() follows links to a regular file and names a FIFO, a device and a folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/blob`, "weights");
    // A Hugging Face cache links each file into its blobs.
    await Deno.symlink(`${dir}/blob`, `${dir}/model.safetensors`);
    await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    await Deno.symlink("/dev/zero", `${dir}/zero`);
    const said = await Promise.all(
      ["blob", "model.safetensors", "fifo", "zero", "."].map((name) =>
        notRegularFile(`${dir}/${name}`)
      ),
    );
    assertEquals(said, [
      undefined,
      undefined,
      "it is a FIFO",
      "it is a character device",
      "it is a folder",
    ]);
    await assertRejects(
      () => notRegularFile(`${dir}/none`),
      Deno.errors.NotFound,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("within() returns within twice its deadline though the read never opened the FIFO it would release, nor ends", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    // A read stuck elsewhere for good: releasing the FIFO must not wait for
    // a reader (a write-only open blocks for ever), nor for the read.
    const never = () => new Promise<number>(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const t0 = performance.now();
    const out = await Promise.race([
      within(100, never, `${dir}/fifo`),
      new Promise<"hung">((r) => timer = setTimeout(() => r("hung"), 2000)),
    ]);
    clearTimeout(timer);
    assertEquals(out, "timeout");
    const ms = performance.now() - t0;
    assert(ms < 1500, `${ms} ms`); // 200 expected; slack for a loaded machine
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// The mutation pass of docs/testing.md (☾) found these edges untested.

Deno.test("formatBytes() moves to the next unit at exactly 1024 and stops at PiB", () => {
  assertEquals(formatBytes(0), "0 B");
  assertEquals(formatBytes(1023), "1023 B");
  assertEquals(formatBytes(1024), "1.0 KiB");
  assertEquals(formatBytes(1536), "1.5 KiB");
  assertEquals(formatBytes(2 ** 50), "1.0 PiB");
  assertEquals(formatBytes(2 ** 60), "1024.0 PiB");
});

Deno.test("readBounded() joins a file read in many chunks in order, plain and through gunzip, at exactly its limit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // 300,000 bytes, none equal to its neighbour's: several reads' worth.
    const data = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) % 251);
    await Deno.writeFile(`${dir}/a.bin`, data);
    assertEquals(
      await readBounded(`${dir}/a.bin`, { limit: data.length }),
      data,
    );
    await Deno.writeFile(
      `${dir}/a.gz`,
      await new Response(
        new Blob([data]).stream().pipeThrough(new CompressionStream("gzip")),
      ).bytes(),
    );
    assertEquals(
      await readBounded(`${dir}/a.gz`, { limit: data.length, gunzip: true }),
      data,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readBounded() says why gzip does not inflate, in one line naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [bytes, why] of [
        [new TextEncoder().encode("not gzip at all"), "invalid gzip header"],
        [
          Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5),
          "corrupt deflate stream",
        ],
      ] as const
    ) {
      await Deno.writeFile(`${dir}/a.gz`, bytes);
      const e = await assertRejects(
        () => readBounded(`${dir}/a.gz`, { limit: 100, gunzip: true }),
        BoundedReadError,
      );
      assertEquals(
        e.message,
        `Cannot read ${dir}/a.gz: not valid gzip (${why})`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readBounded() with gunzip bounds what a file inflates to, not its size, and says so in its own words", async () => {
  const dir = await Deno.makeTempDir();
  const gzip = async (data: Uint8Array<ArrayBuffer>) =>
    await new Response(
      new Blob([data]).stream().pipeThrough(new CompressionStream("gzip")),
    ).bytes();
  try {
    // Bytes that do not compress: the gzip file is larger than its content.
    let x = 2463534242;
    const noise = Uint8Array.from({ length: 1000 }, () => {
      x ^= x << 13, x ^= x >>> 17, x ^= x << 5;
      return x & 0xff;
    });
    const packed = await gzip(noise);
    assert(packed.length > noise.length, `${packed.length}`);
    await Deno.writeFile(`${dir}/n.gz`, packed);
    assertEquals(
      await readBounded(`${dir}/n.gz`, { limit: 1000, gunzip: true }),
      noise,
    );
    await Deno.writeFile(`${dir}/z.gz`, await gzip(new Uint8Array(2000)));
    const e = await assertRejects(
      () => readBounded(`${dir}/z.gz`, { limit: 1024, gunzip: true }),
      BoundedReadError,
    );
    assertEquals(
      e.message,
      `Cannot read ${dir}/z.gz: it inflates to more than the 1.0 KiB a file may be`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readJsonBounded() keeps V8's whole parse message, on one line, when the bad text spans lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/process.json`,
      'garbage{\n  "steps": 1\n}\n',
    );
    const e = await assertRejects(
      () => readJsonBounded(`${dir}/process.json`, { limit: 1024 }),
      BoundedReadError,
    );
    // V8 cuts the quoted text short ("garbage{ "...); what matters is that
    // the quote closes and the message ends as V8 ends it, on one line.
    assert(!e.message.includes("\n"), e.message);
    assertMatch(
      e.message,
      /: Unexpected token 'g', "garbage\{ .*" ?(\.\.\.)? is not valid JSON$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTextBounded() refuses, unread and naming it, a file over what one string holds though its limit is larger", async () => {
  // A metrics log of 629 MB under a 1 GiB limit was read whole, then failed
  // to decode with "buffer exceeds maximum length", naming nothing. A sparse
  // file one byte over MAX_TEXT_BYTES takes no disk and, refused by its
  // size, no reading.
  const dir = await Deno.makeTempDir();
  const path = `${dir}/metrics.jsonl`;
  try {
    using f = await Deno.open(path, { write: true, create: true });
    await f.truncate(MAX_TEXT_BYTES + 1);
    await assertRejects(
      () => readTextBounded(path, { limit: 1 << 30, what: "metrics log" }),
      BoundedReadError,
      `Cannot read ${path}: it is larger than the 512.0 MiB a string can hold, and a metrics log is read whole as one string`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
