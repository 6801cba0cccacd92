// The metrics streams a server holds: bounded (a burst of hundreds stalled
// it: every open of a run's file looks at each descriptor of the server),
// and all ended when the server shuts down (Ctrl-C waited for them).
import { assert, assertEquals } from "@std/assert";
import { dashboardHandler, GenerationService } from "./mod.ts";
import { fakeRun, readEvents } from "./_test_util.ts";

async function setup(maxStreams?: number) {
  const root = await Deno.realPath(await Deno.makeTempDir());
  await fakeRun(`${root}/r`, { lockPid: Deno.pid });
  const stopping = new AbortController();
  const handler = dashboardHandler({
    root,
    generation: new GenerationService(() => Promise.reject(new Error("none"))),
    pollMs: 20,
    keepAliveMs: 60_000,
    signal: stopping.signal,
    maxStreams,
  }, { page: { html: "", js: "", css: "" } });
  const stream = (signal?: AbortSignal) =>
    handler(new Request("http://127.0.0.1/api/run/metrics?run=r", { signal }));
  return { root, stopping, stream };
}

/** The first chunk of a stream's body (its first events). */
async function first(res: Response): Promise<string> {
  const reader = res.body!.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return new TextDecoder().decode(value);
}

Deno.test("GET /api/run/metrics past maxStreams open is a 503 in one line; a stream closed frees its place", async () => {
  const s = await setup(3);
  try {
    const clients = [0, 1, 2].map(() => new AbortController());
    const open = await Promise.all(clients.map((c) => s.stream(c.signal)));
    for (const r of open) {
      assertEquals(r.status, 200);
      assert((await first(r)).startsWith("event: metric"));
    }
    const refused = await s.stream();
    assertEquals(refused.status, 503);
    assertEquals(
      (await refused.json()).error,
      "The server follows 3 metrics streams already (the bound, serve --max-streams): close a tab or try again later",
    );
    // One page leaves (its tab closed): the next stream is served.
    await open[0].body!.cancel();
    const next = await s.stream();
    assertEquals(next.status, 200);
    await next.body!.cancel();
    // A refused stream held no place: still one free after it.
    const bad = await goneRunStatus(s);
    assertEquals(bad, 404);
    const again = await s.stream();
    assertEquals(again.status, 200);
    await again.body!.cancel();
    clients.forEach((c) => c.abort());
    for (const r of open.slice(1)) await r.body!.cancel();
  } finally {
    s.stopping.abort();
    await Deno.remove(s.root, { recursive: true });
  }
});

/** A stream of a run that is not there: 404, its place given back. */
async function goneRunStatus(
  s: Awaited<ReturnType<typeof setup>>,
): Promise<number> {
  await Deno.rename(`${s.root}/r`, `${s.root}/r-away`);
  const r = await s.stream();
  await r.body?.cancel();
  await Deno.rename(`${s.root}/r-away`, `${s.root}/r`);
  return r.status;
}

Deno.test("the server's signal, aborted (serve's Ctrl-C), ends every open metrics stream's body", async () => {
  const s = await setup();
  try {
    const open = await Promise.all([0, 1].map(() => s.stream()));
    const reading = open.map((r) =>
      readEvents(r, () => false, 5_000).then((ev) => ({ ev, at: Date.now() }))
    );
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    s.stopping.abort();
    for (const { ev, at } of await Promise.all(reading)) {
      assertEquals(ev.filter((e) => e.event === "metric").length, 2);
      assert(at - t0 < 1000, `a stream ended ${at - t0} ms after the abort`);
    }
  } finally {
    await Deno.remove(s.root, { recursive: true });
  }
});
