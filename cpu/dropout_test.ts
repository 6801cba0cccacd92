import { assert, assertEquals } from "@std/assert";
import { dropoutBackward } from "./dropout.ts";
import { blas, fill, keepRef, withKernels } from "./_test_util.ts";

Deno.test({
  name:
    "dropoutBackward() applies exactly the WebGPU engine's mask (the hash written out from its WGSL), at any offset and length",
  ...blas,
  fn: () =>
    withKernels(1 << 19, (k) => {
      for (
        const [seed, site, rate] of [[0, 0, 0.1], [0xdeadbeef, 123456, 0.5], [
          7,
          2 ** 31 + 5,
          0.9,
        ]]
      ) {
        const n = 50021; // odd: vector lanes and the scalar tail
        const src = fill(k.floats(n), seed % 97), dst = k.floats(n);
        dropoutBackward(k, { src, dst, dropout: { seed, site, rate } });
        let kept = 0;
        for (let i = 0; i < n; i++) {
          const expected = Math.fround(src[i] * keepRef(seed, site, rate, i));
          if (dst[i] !== expected) {
            throw new Error(
              `seed ${seed}, site ${site}, element ${i}: ${
                dst[i]
              } ≠ ${expected}`,
            );
          }
          if (keepRef(seed, site, rate, i) !== 0) kept++;
        }
        // The kept share is 1 − rate within 5 binomial standard deviations.
        const sd = Math.sqrt(n * rate * (1 - rate));
        assert(
          Math.abs(kept - n * (1 - rate)) < 5 * sd,
          `kept ${kept} of ${n} at rate ${rate}`,
        );
      }
      // In place, and rate 0 keeps everything.
      const x = fill(k.floats(999), 1), copy = x.slice();
      dropoutBackward(k, {
        src: x,
        dst: x,
        dropout: { seed: 1, site: 2, rate: 0 },
      });
      assertEquals(x, copy);
    }),
});
