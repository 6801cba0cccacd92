import {
  assert,
  assertEquals,
  assertIsError,
  assertRejects,
} from "@std/assert";
import { within } from "./_within_test_util.ts";
import {
  BoundedReadError,
  notRegularFile,
  readBounded,
  readJsonBounded,
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
