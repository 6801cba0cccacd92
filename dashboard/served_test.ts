// The dashboard served by Deno.serve, as `serve` runs it: a stream whose
// client leaves stops its work, and Deno 2.9's warning on reading
// request.signal is not printed. The routes read request.signal as "the
// client is gone"; the workspace opts in to Deno's coming semantics
// (deno.json `"unstable": ["no-legacy-abort"]`: the signal aborts when the
// client leaves, not also after every successful response), under which
// Deno does not warn. Without the opt-in this test fails on the warning.
import { assert, assertEquals } from "@std/assert";
import { dashboardHandler, GenerationService } from "./mod.ts";
import { fakeLoader, fakeRun, readEvents } from "./_test_util.ts";
import { sleep } from "./follow.ts";

/** Whether `ok()` holds within `ms`, looked at every 10 ms. */
async function within(ms: number, ok: () => boolean): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await sleep(10);
  return ok();
}

Deno.test("served by Deno.serve, a generation or metrics stream whose client leaves stops its work, and Deno's warning on reading request.signal is never printed", async () => {
  const warned: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warned.push(args.join(" "));
  const root = await Deno.realPath(await Deno.makeTempDir());
  await fakeRun(`${root}/good`, { results: true });
  await fakeRun(`${root}/live`, { lockPid: Deno.pid });
  const generation = new GenerationService(fakeLoader(50));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    dashboardHandler(
      { root, generation, pollMs: 20, keepAliveMs: 60_000, maxStreams: 1 },
      { page: { html: "", js: "", css: "" } },
    ),
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  const generate = (steps: number) =>
    fetch(`${base}/api/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ run: "good", model: "d3pm", steps }),
    });
  const metrics = () => fetch(`${base}/api/run/metrics?run=live`);
  try {
    // Whole responses: a list, a generation read to its end.
    assertEquals(
      (await (await fetch(`${base}/api/runs`)).json()).runs.length,
      2,
    );
    const whole = await readEvents(
      await generate(2),
      (ev) => ev.some((e) => e.event === "done"),
    );
    assertEquals(whole.at(-1)!.event, "done");
    // A client that leaves after the first frame of 50 (2.5 s at 50 ms a
    // step): the generation is cancelled at its next step, the model freed.
    const long = await generate(50);
    assertEquals(long.status, 200);
    await readEvents(
      long,
      (ev) => ev.some((e) => e.event === "frame"),
    ); // reads, then cancels the body: the connection is closed
    assert(
      await within(1_000, () => generation.running === 0),
      "the generation went on after its client left",
    );
    assertEquals(
      [generation.completed, generation.cancelled, generation.failed],
      [1, 1, 0],
    );
    // A metrics stream (the only one the server takes) whose client leaves
    // gives its place back: its following of the log ended.
    const followed = await readEvents(
      await metrics(),
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    assertEquals(followed.filter((e) => e.event === "metric").length, 2);
    let next = await metrics();
    for (let i = 0; i < 50 && next.status !== 200; i++) {
      await next.body?.cancel();
      await sleep(20);
      next = await metrics();
    }
    assertEquals(
      next.status,
      200,
      "the metrics stream whose client left kept its place for 1 s",
    );
    await next.body?.cancel();
  } finally {
    await server.shutdown();
    console.warn = warn;
    await Deno.remove(root, { recursive: true });
  }
  assertEquals(warned.filter((w) => w.includes("request.signal")), []);
});
