// Browsers refuse one buffer in two writable slots of a dispatch when the
// bound ranges overlap; the matmul binds the operands that share the arena
// as separate ranges (separateRanges).
import { assertEquals } from "@std/assert";
import { separateRanges } from "./_recorder.ts";

const buffer = (size: number) => ({ size }) as unknown as GPUBuffer;

Deno.test("separateRanges() binds operands sharing a buffer as aligned, disjoint ranges and shifts their offsets", () => {
  const act = buffer(4096 * 4), params = buffer(1024 * 4);
  const { slots, shift } = separateRanges(
    [
      [1, act, 64, 2 * 128], // A: 2 rows of 128 at float 64
      [2, params, 10, 100], // B: alone in its buffer
      [3, act, 512, 2 * 64], // C: at float 512
    ],
    null,
    256,
  );
  assertEquals(slots[1], { buffer: act, offset: 256, size: 2 * 128 * 4 });
  assertEquals(slots[2], params); // whole
  assertEquals(slots[3], { buffer: act, offset: 2048, size: 2 * 64 * 4 });
  assertEquals(shift, { 1: 64, 2: 0, 3: 512 });
});

Deno.test("separateRanges() keeps whole buffers when the ranges would overlap or the buffer is bound whole elsewhere", () => {
  const act = buffer(4096 * 4);
  const overlapping = separateRanges(
    [[1, act, 0, 300], [3, act, 200, 10]],
    null,
    256,
  );
  assertEquals([overlapping.slots[1], overlapping.slots[3]], [act, act]);
  assertEquals(overlapping.shift, { 1: 0, 3: 0 });
  const gated = separateRanges([[1, act, 0, 10], [3, act, 512, 10]], act, 256);
  assertEquals([gated.slots[1], gated.slots[3]], [act, act]);
});
