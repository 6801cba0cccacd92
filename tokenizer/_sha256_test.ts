import { assertEquals } from "@std/assert";
import { sha256Hex } from "./_sha256.ts";

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
