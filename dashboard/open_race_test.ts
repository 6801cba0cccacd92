// A run folder swapped for a link out of the served root between a route's
// check of a file and its open (the race a `renameat2(RENAME_EXCHANGE)`
// loop won about 1 in 2,500 requests), planted deterministically through
// openInside's test seams; and a metrics log replaced or turned into a link
// out while it is followed.
import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  dashboardHandler,
  followLines,
  GenerationService,
  openInside,
  trainedModelLoader,
} from "./mod.ts";
import { openHooks } from "./_open_hooks.ts";
import {
  eventReader,
  fakeLoader,
  fakeRun,
  readEvents,
  until,
} from "./_test_util.ts";
import { ignoreUnless } from "@d3pm/core/testing";

const SECRET = "OUTSIDE-SECRET";

/** A root with run `good`, and outside it a folder shaped like a run whose every file holds SECRET. */
async function setup() {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const root = `${base}/runs`, outside = `${base}/outside`;
  await fakeRun(`${root}/good`, { results: true });
  await fakeRun(outside, { results: true });
  await Deno.writeTextFile(`${outside}/report.md`, `# ${SECRET}\n`);
  await Deno.writeTextFile(
    `${outside}/seed-0/d3pm/model.safetensors`,
    SECRET,
  );
  await Deno.writeTextFile(
    `${outside}/seed-0/d3pm/process.json`,
    JSON.stringify({ secret: SECRET }),
  );
  const handler = dashboardHandler({
    root,
    generation: new GenerationService(fakeLoader(2)),
    pollMs: 20,
    keepAliveMs: 60_000,
  }, { page: { html: "", js: "", css: "" } });
  const get = (path: string, init?: RequestInit) =>
    handler(new Request(`http://127.0.0.1${path}`, init));
  // The run folder and a link to the outside one trade places, as
  // RENAME_EXCHANGE does (in two renames here: the test is the only writer).
  const swapOut = async () => {
    await Deno.rename(`${root}/good`, `${base}/held`);
    await Deno.symlink(outside, `${root}/good`);
  };
  const swapBack = async () => {
    await Deno.remove(`${root}/good`);
    await Deno.rename(`${base}/held`, `${root}/good`);
  };
  return {
    base,
    root,
    outside,
    get,
    swapOut,
    swapBack,
    done: async () => {
      delete openHooks.afterCheck;
      delete openHooks.afterOpen;
      delete openHooks.afterFolderOpen;
      delete openHooks.beforeFolderOpen;
      await Deno.remove(base, { recursive: true });
    },
  };
}

const ROUTES = [
  "/api/run/file?run=good&name=report.md",
  "/api/run/model?run=good&seed=0&model=d3pm&part=weights",
  "/api/run/model?run=good&seed=0&model=d3pm&part=process",
  "/api/run/unmasking?run=good&seed=0&model=d3pm",
];

Deno.test("a run folder swapped for a link out between a route's check and its open is not served: the file, model weights and process.json routes answer 404, never the outside file (swapped and left, or swapped back before the re-check)", async () => {
  for (const back of [false, true]) {
    for (const route of ROUTES) {
      const s = await setup();
      try {
        let swapped = false;
        openHooks.afterCheck = async () => {
          if (swapped) return;
          swapped = true;
          await s.swapOut();
        };
        if (back) openHooks.afterOpen = () => s.swapBack();
        const r = await s.get(route);
        const body = await r.text();
        assert(swapped, `${route}: the swap was not planted`);
        assert(!body.includes(SECRET), `${route} served the outside file`);
        assertEquals(r.status, 404, `${route} (back: ${back}): ${body}`);
        // Nothing swapped: the same route serves the run's own file.
        delete openHooks.afterCheck;
        delete openHooks.afterOpen;
        if (!back) await s.swapBack();
        // (The fake run's process.json is "{}", no process: the unmasking
        // route's answer says it read it, a 503 in the process's own words
        // as a generation of the model gives, no longer a 500 "Internal
        // error".)
        const again = await s.get(route);
        const text = await again.text();
        assertEquals(
          again.status,
          route.includes("unmasking") ? 503 : 200,
          `${route}: ${text}`,
        );
        if (route.includes("unmasking")) {
          assert(
            JSON.parse(text).error.startsWith(
              "Cannot load model d3pm of seed 0: Invalid ",
            ),
            text,
          );
        }
      } finally {
        await s.done();
      }
    }
  }
});

Deno.test("/api/run reads every file of the run folder opened once: the folder swapped for a link to an outside run-shaped folder just after it was opened is still the run's own (200, its config), and just before, 404 — never the outside config", async () => {
  for (const when of ["after", "before"] as const) {
    const s = await setup();
    try {
      let swapped = false;
      const swap = async () => {
        if (swapped) return;
        swapped = true;
        await s.swapOut();
      };
      if (when === "after") openHooks.afterFolderOpen = swap;
      else openHooks.beforeFolderOpen = swap;
      const r = await s.get("/api/run?run=good");
      const body = await r.text();
      assert(swapped, `${when}: the swap was not planted`);
      assert(!body.includes(s.outside), `${when}: served the outside config`);
      assertEquals(r.status, when === "after" ? 200 : 404, body);
      if (when === "before") {
        // The run list stands, that row saying why.
        await s.swapBack();
        swapped = false;
        const list = await (await s.get("/api/runs")).json();
        assert(swapped, "the swap was not planted in the list");
        assertEquals(list.runs, [{
          id: "good",
          status: "corrupt",
          reason:
            "The run folder was moved or replaced as it was opened; try again",
        }]);
      }
      if (when === "after") {
        assertEquals(JSON.parse(body).configFull.out, `${s.root}/good`);
      }
    } finally {
      delete openHooks.afterFolderOpen;
      delete openHooks.beforeFolderOpen;
      await s.done();
    }
  }
});

Deno.test("a generation's model is read from the run folder opened once: swapped just after the open for a link to an outside folder without config.json, the loader still reads the run's own config", async () => {
  const s = await setup();
  try {
    await Deno.remove(`${s.outside}/config.json`);
    let swapped = false;
    openHooks.afterFolderOpen = async () => {
      if (swapped) return;
      swapped = true;
      await s.swapOut();
    };
    // The fake run's weights are no model: the load fails past its config.
    const e = await assertRejects(() =>
      trainedModelLoader("tfjs")(`${s.root}/good`, 0, "d3pm")
    );
    assert(swapped, "the swap was not planted");
    assert(!e.message.includes("no config.json"), e.message);
    assert(!e.message.includes("/proc/self/fd"), e.message);
  } finally {
    await s.done();
  }
});

Deno.test("openInside() opens a file inside the root and refuses, once open, a file the path no longer leads to", async () => {
  const s = await setup();
  try {
    const path = `${s.root}/good/report.md`;
    const ok = await openInside(`${s.root}/good`, path);
    assertEquals(ok?.real, path);
    ok!.file.close();
    openHooks.afterCheck = () => s.swapOut();
    assertEquals(await openInside(`${s.root}/good`, path), undefined);
    // Swapped out for the open, back before the re-check: the path leads
    // inside again, to another file than the one open.
    await s.swapBack();
    openHooks.afterOpen = () => s.swapBack();
    assertEquals(await openInside(`${s.root}/good`, path), undefined);
    // No swap: opened.
    delete openHooks.afterCheck;
    delete openHooks.afterOpen;
    const again = await openInside(`${s.root}/good`, path);
    assertEquals(again?.info.size, (await Deno.stat(path)).size);
    again!.file.close();
  } finally {
    await s.done();
  }
});

/** The metric events' data and the names of every event, until `until`. */
async function stream(
  res: Response,
  until: (ev: { event: string; data: string }[]) => boolean,
) {
  const events = await readEvents(res, until, 5_000);
  return { events, names: events.map((e) => e.event) };
}

/**
 * The events of `res` until `until`, `change` made to the log once the
 * stream has read it to its end (`caught-up`): a change made after a fixed
 * delay instead could come before the stream's first read on a loaded
 * machine, and the events were then others.
 */
async function streamChanged(
  res: Response,
  change: () => Promise<void>,
  until: (ev: { event: string; data: string }[]) => boolean,
) {
  const reader = eventReader(res);
  try {
    await reader.until((ev) => ev.some((e) => e.event === "caught-up"));
    await change();
    const events = await reader.until(until);
    return { events, names: events.map((e) => e.event) };
  } finally {
    await reader.cancel();
  }
}

Deno.test("a followed metrics.jsonl replaced by a link out of the run is not read: the stream ends with an error event, also for a log that did not exist when the stream opened", async () => {
  const s = await setup();
  try {
    const lines = Array.from(
      { length: 20 },
      (_, i) => JSON.stringify({ model: "ar", seed: 0, step: i, s: SECRET }),
    ).join("\n") + "\n";
    await Deno.writeTextFile(`${s.base}/secret.jsonl`, lines);
    for (const fresh of [false, true]) {
      const metrics = `${s.root}/good/metrics.jsonl`;
      await Deno.remove(metrics).catch(() => {});
      if (!fresh) await Deno.writeTextFile(metrics, '{"step":1}\n');
      const ac = new AbortController();
      const res = await s.get("/api/run/metrics?run=good", {
        signal: ac.signal,
      });
      assertEquals(res.status, 200);
      const got = await streamChanged(
        res,
        async () => {
          await Deno.remove(metrics).catch(() => {});
          await Deno.symlink(`${s.base}/secret.jsonl`, metrics);
        },
        (ev) =>
          ev.some((e) =>
            e.event !== "metric" && e.event !== "caught-up" &&
            e.event !== "reset"
          ),
      );
      ac.abort();
      assert(
        !got.events.some((e) => e.data.includes(SECRET)),
        `fresh: ${fresh}: the outside log was streamed`,
      );
      assertEquals(got.names.at(-1), "error", `fresh: ${fresh}`);
      assertEquals(
        JSON.parse(got.events.at(-1)!.data).error,
        "Run good's metrics.jsonl is no longer a file inside the run (a link out of it?): not followed",
      );
      await Deno.remove(metrics);
    }
  } finally {
    await s.done();
  }
});

const record = (step: number, pad = "") =>
  JSON.stringify({ model: "ar", seed: 0, step, loss: 5 - step / 10, pad }) +
  "\n";

Deno.test("a followed metrics.jsonl replaced by a longer file (renamed over it) gives `reset` and the new file from its start, not the rest from the old offset", async () => {
  const s = await setup();
  try {
    const metrics = `${s.root}/good/metrics.jsonl`;
    const ac = new AbortController();
    const res = await s.get("/api/run/metrics?run=good", { signal: ac.signal });
    const got = await streamChanged(
      res,
      async () => {
        // Longer than the old log, lines of another length: the old offset
        // falls inside one of them.
        await Deno.writeTextFile(
          `${metrics}.new`,
          [10, 11, 12].map((n) => record(n, "x".repeat(37))).join(""),
        );
        await Deno.rename(`${metrics}.new`, metrics);
      },
      (ev) => ev.filter((e) => e.event === "metric").length >= 5,
    );
    ac.abort();
    assertEquals(got.names, [
      "metric",
      "metric",
      "caught-up",
      "reset",
      "metric",
      "metric",
      "metric",
    ]);
    assertEquals(
      got.events.filter((e) => e.event === "metric").map((e) =>
        JSON.parse(e.data).step
      ),
      [1, 2, 10, 11, 12],
    );
  } finally {
    await s.done();
  }
});

Deno.test("a reconnect whose Last-Event-ID is of a log since replaced gets `reset` and the new log whole; a plain byte offset (an id of old) still resumes there", async () => {
  const s = await setup();
  try {
    const metrics = `${s.root}/good/metrics.jsonl`;
    const first = await stream(
      await s.get("/api/run/metrics?run=good"),
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    const last = first.events.filter((e) => e.event === "metric").at(-1)!;
    assert(/^\d+-\d+:\d+:[0-9a-f]{8}$/.test(last.id!), `id ${last.id}`);
    // Replaced by a longer log, renamed over it.
    await Deno.writeTextFile(
      `${metrics}.new`,
      [1, 2, 3, 4].map((n) => record(n, "y".repeat(20))).join(""),
    );
    await Deno.rename(`${metrics}.new`, metrics);
    const again = await stream(
      await s.get("/api/run/metrics?run=good", {
        headers: { "last-event-id": last.id! },
      }),
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    assertEquals(again.names, [
      "reset",
      "metric",
      "metric",
      "metric",
      "metric",
      "caught-up",
    ]);
    // An id of the new log resumes in it, without a reset.
    const second = again.events.filter((e) => e.event === "metric")[1];
    const resumed = await stream(
      await s.get("/api/run/metrics?run=good", {
        headers: { "last-event-id": second.id! },
      }),
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    assertEquals(resumed.names, ["metric", "metric", "caught-up"]);
    // A plain offset: taken as an offset of the log there.
    const offset = second.id!.split(":")[1];
    const plain = await stream(
      await s.get("/api/run/metrics?run=good", {
        headers: { "last-event-id": offset },
      }),
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    assertEquals(
      plain.events.filter((e) => e.event === "metric").map((e) =>
        JSON.parse(e.data).step
      ),
      [3, 4],
    );
    const bad = await s.get("/api/run/metrics?run=good&from=1-2:x");
    assertEquals(await bad.json(), {
      error:
        'from must be a byte offset (OFFSET, a whole number) or an event id (DEV-INO:OFFSET or DEV-INO:OFFSET:CHECK, CHECK 8 hex digits), got "1-2:x"',
    });
  } finally {
    await s.done();
  }
});

Deno.test("a caught-up id sent while the log is absent keeps the client's identity and check: once a new log is written there, a reconnect with it gets `reset` and the new log whole", async () => {
  const s = await setup();
  try {
    const metrics = `${s.root}/good/metrics.jsonl`;
    await Deno.writeTextFile(
      metrics,
      [1, 2, 3, 4, 5].map((n) => record(n)).join(""),
    );
    const caughtUp = async (id?: string) =>
      (await stream(
        await s.get(
          "/api/run/metrics?run=good",
          id ? { headers: { "last-event-id": id } } : undefined,
        ),
        (ev) => ev.some((e) => e.event === "caught-up"),
      )).events.find((e) => e.event === "caught-up")!;
    const first = (await caughtUp()).id!;
    assert(/^\d+-\d+:\d+:[0-9a-f]{8}$/.test(first), `id ${first}`);
    await Deno.rename(metrics, `${s.base}/old.jsonl`); // moved aside (--force)
    const absent = await caughtUp(first);
    assertEquals(absent.id, first); // nothing read: the client's id as sent
    await Deno.writeTextFile(
      metrics,
      [1, 2, 3, 4, 5, 6, 7, 8].map((n) => record(n, "new")).join(""),
    );
    const again = await stream(
      await s.get("/api/run/metrics?run=good", {
        headers: { "last-event-id": absent.id! },
      }),
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    assertEquals(again.names[0], "reset");
    assertEquals(
      again.events.filter((e) => e.event === "metric").map((e) =>
        JSON.parse(e.data).step
      ),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
  } finally {
    await s.done();
  }
});

Deno.test("followLines() resets when the file is replaced by a longer one, and when `identity` names another file than the one there", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/m.jsonl`;
  await Deno.writeTextFile(path, '{"a":1}\n');
  let identity = "";
  const got: unknown[] = [];
  const stop = new AbortController();
  const done = (async () => {
    for await (
      const f of followLines(path, {
        signal: stop.signal,
        pollMs: 10,
        onOpen: (i) => identity = i,
      })
    ) got.push(f);
  })();
  try {
    await until(
      () => got.length >= 1 && identity !== "",
      "the first line read, the file's identity known",
    );
    const first = identity;
    await Deno.writeTextFile(`${dir}/n`, '{"b":22}\n{"c":3}\n');
    await Deno.rename(`${dir}/n`, path);
    await until(() => got.length >= 4, "the reset and the new file's lines");
    assertEquals(got, [
      { line: '{"a":1}', end: 8, number: 1 },
      { reset: true },
      { line: '{"b":22}', end: 9, number: 1 },
      { line: '{"c":3}', end: 17, number: 2 },
    ]);
    assert(first !== identity && identity !== "");
    const resumed: unknown[] = [];
    for await (
      const f of followLines(path, { from: 9, identity: first, once: true })
    ) resumed.push(f);
    assertEquals(resumed.slice(0, 2), [{ reset: true }, {
      line: '{"b":22}',
      end: 9,
      number: 1,
    }]);
    const same: unknown[] = [];
    for await (
      const f of followLines(path, { from: 9, identity, once: true })
    ) same.push(f);
    assertEquals(same, [{ line: '{"c":3}', end: 17, number: 1 }]);
  } finally {
    stop.abort();
    await done;
    await Deno.remove(dir, { recursive: true });
  }
});

/** Why a renameat2(RENAME_EXCHANGE) swapper cannot run here, or null. */
async function swapperMissing(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "renameat2 is Linux's";
  try {
    const { success } = await new Deno.Command("python3", {
      args: ["-c", "import ctypes; ctypes.CDLL('libc.so.6').renameat2"],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? null : "python3 finds no renameat2 in libc";
  } catch {
    return "no python3";
  }
}

const SWAPPER = `
import ctypes, sys, time
libc = ctypes.CDLL("libc.so.6", use_errno=True)
a, b, end = sys.argv[1].encode(), sys.argv[2].encode(), time.time() + float(sys.argv[3])
n = 0
while time.time() < end:
    for _ in range(1000):
        if libc.renameat2(-100, a, -100, b, 2) != 0:
            raise OSError(ctypes.get_errno(), "renameat2")
        n += 1
if n % 2:
    libc.renameat2(-100, a, -100, b, 2)
print(n)
`;

Deno.test({
  name:
    "under a real swapper (a run folder and a link out traded by renameat2 RENAME_EXCHANGE in a loop for 3 s) the file route serves the run's report or 404, never the outside one",
  ignore: ignoreUnless("a renameat2 swapper", await swapperMissing()),
  fn: async () => {
    const s = await setup();
    try {
      await Deno.symlink(s.outside, `${s.root}/link`);
      const swapper = new Deno.Command("python3", {
        args: ["-c", SWAPPER, `${s.root}/good`, `${s.root}/link`, "3"],
        stdout: "piped",
      }).spawn();
      const counts = new Map<number, number>();
      let leaks = 0;
      const end = Date.now() + 2_500;
      while (Date.now() < end) {
        const r = await s.get("/api/run/file?run=good&name=report.md");
        if ((await r.text()).includes(SECRET)) leaks++;
        counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      }
      const swaps = Number(new TextDecoder().decode(
        (await swapper.output()).stdout,
      ));
      // Both answers seen: the requests did race the swaps.
      assert(
        swaps > 1000 && (counts.get(200) ?? 0) > 0 &&
          (counts.get(404) ?? 0) > 0,
        `swaps ${swaps}, ${JSON.stringify([...counts])}`,
      );
      assertEquals(leaks, 0, `${JSON.stringify([...counts])}`);
    } finally {
      await s.done();
    }
  },
});

Deno.test({
  name:
    "under a real swapper (the run folder and a link out traded by renameat2 RENAME_EXCHANGE for 3 s) /api/run serves the run's own config or 404, never the outside one",
  ignore: ignoreUnless("a renameat2 swapper", await swapperMissing()),
  fn: async () => {
    const s = await setup();
    try {
      await Deno.symlink(s.outside, `${s.root}/link`);
      const swapper = new Deno.Command("python3", {
        args: ["-c", SWAPPER, `${s.root}/good`, `${s.root}/link`, "3"],
        stdout: "piped",
      }).spawn();
      const counts = new Map<number, number>();
      let leaks = 0;
      const end = Date.now() + 2_500;
      while (Date.now() < end) {
        const r = await s.get("/api/run?run=good");
        if ((await r.text()).includes(s.outside)) leaks++;
        counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      }
      const swaps = Number(new TextDecoder().decode(
        (await swapper.output()).stdout,
      ));
      assert(
        swaps > 1000 && (counts.get(200) ?? 0) > 0,
        `swaps ${swaps}, ${JSON.stringify([...counts])}`,
      );
      assertEquals(leaks, 0, `${JSON.stringify([...counts])}`);
    } finally {
      await s.done();
    }
  },
});

/** fakeRun's log rewritten: lines as long as its two, of other steps, then more. */
const OTHER_LOG = [
  '{"model":"ar","seed":0,"step":7,"loss":5}\n',
  '{"model":"ar","seed":0,"step":8,"loss":4.5}\n',
  record(9),
  record(10),
].join("");

Deno.test("a reconnect whose Last-Event-ID is of a log rewritten since in the same inode (ext4 reuses a freed inode at once) gets `reset` and the new log whole, not its rest from the old offset", async () => {
  const s = await setup();
  try {
    const metrics = `${s.root}/good/metrics.jsonl`;
    const first = await stream(
      await s.get("/api/run/metrics?run=good"),
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    const caught = first.events.find((e) => e.event === "caught-up")!;
    const ino = (await Deno.stat(metrics)).ino;
    await Deno.writeTextFile(metrics, OTHER_LOG); // truncated, rewritten
    assertEquals((await Deno.stat(metrics)).ino, ino);
    const again = await stream(
      await s.get("/api/run/metrics?run=good", {
        headers: { "last-event-id": caught.id! },
      }),
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    assertEquals(again.names[0], "reset");
    assertEquals(
      again.events.filter((e) => e.event === "metric").map((e) =>
        JSON.parse(e.data).step
      ),
      [7, 8, 9, 10],
    );
    // An id of before checks (DEV-INO:OFFSET) is still taken as it was.
    const old = caught.id!.split(":").slice(0, 2).join(":");
    const legacy = await stream(
      await s.get("/api/run/metrics?run=good", {
        headers: { "last-event-id": old },
      }),
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    assertEquals(
      legacy.events.filter((e) => e.event === "metric").map((e) =>
        JSON.parse(e.data).step
      ),
      [9, 10],
    );
  } finally {
    await s.done();
  }
});

Deno.test("a followed metrics.jsonl overwritten in place by a longer log (never shorter, same inode) gives `reset` and the new log from its start", async () => {
  const s = await setup();
  try {
    const metrics = `${s.root}/good/metrics.jsonl`;
    const ac = new AbortController();
    const res = await s.get("/api/run/metrics?run=good", { signal: ac.signal });
    const got = await streamChanged(
      res,
      async () => {
        using f = await Deno.open(metrics, { write: true }); // no truncation
        await f.write(new TextEncoder().encode(OTHER_LOG));
      },
      (ev) => ev.filter((e) => e.event === "metric").length >= 6,
    );
    ac.abort();
    assertEquals(got.names, [
      "metric",
      "metric",
      "caught-up",
      "reset",
      "metric",
      "metric",
      "metric",
      "metric",
    ]);
    assertEquals(
      got.events.filter((e) => e.event === "metric").map((e) =>
        JSON.parse(e.data).step
      ),
      [1, 2, 7, 8, 9, 10],
    );
  } finally {
    await s.done();
  }
});
