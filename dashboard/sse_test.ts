// A stream whose client is gone before it starts must leave nothing behind:
// a keep-alive interval left running kept `deno task serve` alive after Ctrl-C.
import { assertEquals } from "@std/assert";
import { eventResponse } from "./sse.ts";

/** Runs `f` counting the intervals it sets and has not cleared yet. */
async function liveIntervals(f: () => Promise<void>): Promise<number> {
  const set = globalThis.setInterval;
  const clear = globalThis.clearInterval;
  const live = new Set<ReturnType<typeof set>>();
  globalThis.setInterval = ((...a: Parameters<typeof set>) => {
    const id = set(...a);
    live.add(id);
    return id;
  }) as typeof set;
  globalThis.clearInterval = ((id: ReturnType<typeof set>) => {
    live.delete(id);
    clear(id);
  }) as typeof clear;
  try {
    await f();
  } finally {
    globalThis.setInterval = set;
    globalThis.clearInterval = clear;
  }
  for (const id of live) clear(id); // so a failure does not leak it too
  return live.size;
}

Deno.test("eventResponse() with an already aborted signal closes at once and leaves no keep-alive timer", async () => {
  const ac = new AbortController();
  ac.abort("gone");
  let closes = 0;
  let finished = false;
  async function* source() {
    try {
      yield { data: "1" };
    } finally {
      finished = true;
    }
  }
  const it = source();
  await it.next(); // started, so return() runs its finally
  const left = await liveIntervals(async () => {
    const res = eventResponse(it, {
      signal: ac.signal,
      keepAliveMs: 50,
      onClose: () => closes++,
    });
    assertEquals(await res.text(), "");
  });
  assertEquals(left, 0, "a keep-alive interval outlived the stream");
  assertEquals(closes, 1);
  assertEquals(finished, true);
});

Deno.test("eventResponse() aborted while open clears its keep-alive timer and calls onClose once", async () => {
  const ac = new AbortController();
  let closes = 0;
  async function* source() {
    yield { data: "1" };
    await new Promise(() => {}); // a follower that never yields again
  }
  const left = await liveIntervals(async () => {
    const res = eventResponse(source(), {
      signal: ac.signal,
      keepAliveMs: 10,
      onClose: () => closes++,
    });
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assertEquals(first, "data: 1\n\n");
    ac.abort("gone");
    while (!(await reader.read()).done) { /* keep-alives until closed */ }
  });
  assertEquals(left, 0);
  assertEquals(closes, 1);
});
