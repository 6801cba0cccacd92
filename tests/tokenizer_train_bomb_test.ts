// Issue 22, group 10, through the command line: `deno task tokenizer:train`
// (examples/tokenizer_train.ts) given a gzip bomb. A 17 MB gzip of zeros
// once passed 3 GB of RSS; the input is now inflated as it streams and
// refused at 1 GiB of text (MAX_INPUT), in one line naming the file and the
// limit, holding no more than the limit's worth of text on the way.
import { assert, assertEquals } from "@std/assert";
import { constants, crc32, deflateRawSync } from "node:zlib";
import { tempDir } from "@d3pm/core/testing";
import { ROOT } from "./_run.ts";

const MIB = 1 << 20;

/**
 * Write a valid gzip of `mib` MiB of zeros, about 1 KiB on disk per MiB,
 * without compressing them all: one MiB deflated and ended by a full flush
 * (byte-aligned, no reference before it) is repeated, then an empty final
 * block and the gzip trailer (CRC-32 and size of the whole).
 */
async function writeZerosGzip(path: string, mib: number): Promise<void> {
  const zeros = new Uint8Array(MIB);
  const part = deflateRawSync(zeros, {
    level: 9,
    finishFlush: constants.Z_FULL_FLUSH,
  });
  let crc = 0;
  const many = new Uint8Array(16 * MIB); // for the CRC: fewer, longer calls
  for (let i = 0; i < mib; i += 16) {
    crc = crc32(many.subarray(0, Math.min(16, mib - i) * MIB), crc);
  }
  const trailer = new Uint8Array(10);
  trailer.set([0x03, 0x00]); // an empty final block of fixed codes
  const view = new DataView(trailer.buffer);
  view.setUint32(2, crc >>> 0, true);
  view.setUint32(6, (mib * MIB) % 2 ** 32, true);
  using file = await Deno.open(path, { write: true, createNew: true });
  const header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
  await file.write(new Uint8Array(header));
  for (let i = 0; i < mib; i++) await file.write(part);
  await file.write(trailer);
}

// The peak resident memory the kernel has recorded for `pid` so far (KiB).
async function peakKiB(pid: number): Promise<number | undefined> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() =>
    undefined
  );
  const kb = status?.match(/^VmHWM:\s+(\d+) kB$/m)?.[1];
  return kb === undefined ? undefined : Number(kb);
}

// The peak memory is read from Linux's /proc; elsewhere the test is skipped,
// saying so (CI runs on Linux).
const PROC = Deno.build.os === "linux";
if (!PROC) {
  console.warn("skipping the gzip-bomb test: it reads /proc (Linux only)");
}

Deno.test({
  name:
    "10: tokenizer:train refuses a gzip bomb in one line naming the file and the limit, in bounded time and memory",
  ignore: !PROC,
}, async () => {
  await using tmp = await tempDir(); // removed however the test ends
  const dir = tmp.path;
  const input = `${dir}/zeros.txt.gz`;
  // 2 GiB of text from a 2 MiB file, twice the 1 GiB limit: a reader that
  // checks the limit only once it has read everything holds over 1.5 GiB.
  await writeZerosGzip(input, 2048);
  assert((await Deno.stat(input)).size < 3 * MIB);
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ROOT}examples/tokenizer_train.ts`,
      "--input",
      input,
      "--out",
      `${dir}/bpe.json`,
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(120_000),
  }).spawn();
  // VmHWM only grows: its last reading before the exit is the peak, short of
  // what the last 25 ms added. Holding the text past the limit (the whole
  // input, then its copy) would take over twice the limit: the tool is
  // stopped as soon as it passes the bound.
  const bound = 1.5 * 2 ** 20; // KiB: the 1 GiB limit and 512 MiB more
  let peak = 0;
  let done = false;
  const out = child.output().finally(() => done = true);
  while (!done) {
    peak = Math.max(peak, await peakKiB(child.pid) ?? 0);
    if (peak >= bound) {
      try {
        child.kill("SIGKILL");
      } catch {
        // It ended meanwhile.
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const { code, stderr } = await out;
  assert(peak < bound, `peak RSS ${peak} KiB, over 1.5 GiB: stopped`);
  const seconds = (performance.now() - started) / 1000;
  const text = new TextDecoder().decode(stderr).trim();
  assertEquals(code, 2, text);
  assertEquals(
    text,
    `error: cannot gunzip --input ${input}: it inflates to more than the 1.0 GiB a training text may be`,
  );
  assert(peak > 0, "no VmHWM was read from /proc");
  assert(seconds < 60, `refused after ${seconds.toFixed(1)} s`);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), [
    "zeros.txt.gz",
  ]);
});
