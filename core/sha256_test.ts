import { assertEquals } from "@std/assert";
import { createSha256, sha256Hex } from "./sha256.ts";

Deno.test("sha256Hex() equals Web Crypto's SHA-256 across block boundaries", async () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 65537]) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(
      "",
    );
    assertEquals(sha256Hex(data), hex, `length ${n}`);
  }
});

Deno.test("createSha256() gives the same digest fed in pieces as at once", () => {
  const data = new Uint8Array(10_000).map((_, i) => (i * 7) & 255);
  const h = createSha256();
  for (let at = 0; at < data.length; at += 333) {
    h.update(data.subarray(at, at + 333));
  }
  assertEquals(h.hex(), sha256Hex(data));
  assertEquals(sha256Hex("é"), sha256Hex(Uint8Array.of(0xc3, 0xa9)));
});
