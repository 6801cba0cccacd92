import { assertEquals } from "@std/assert";
import { qkvWeightFromNeox, qkvWeightToNeox } from "./_gpt_neox.ts";

Deno.test("qkvWeightToNeox() interleaves the heads as GPT-NeoX's query_key_value: [q, k, v] of head 0, then of head 1", () => {
  // d 4, two heads of 2: c_attn [in 4, out 12], column c holds value c + 100·in.
  const d = 4, hd = 2;
  const w = new Float32Array(d * 3 * d);
  for (let i = 0; i < d; i++) {
    for (let c = 0; c < 3 * d; c++) w[i * 3 * d + c] = c + 100 * i;
  }
  const neox = qkvWeightToNeox(w, d, hd); // [out 12, in 4]
  const column = (o: number) => neox[o * d]; // input 0
  // Rows: q0 q0 k0 k0 v0 v0 q1 q1 k1 k1 v1 v1, from c_attn's columns
  // q (0..3), k (4..7), v (8..11), head h at h·2 within each.
  assertEquals(
    Array.from({ length: 12 }, (_, o) => column(o)),
    [0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11],
  );
  assertEquals(neox[5 * d + 3], 9 + 300); // row 5 (v0, channel 1), input 3
  assertEquals(qkvWeightFromNeox(neox, d, hd), w);
});
