import {
  assert,
  assertEquals,
  assertMatch,
  assertRejects,
  assertThrows,
} from "@std/assert";
import { inspectRun } from "@d3pm/experiment";
import {
  BadRunIdError,
  checkListen,
  checkRunId,
  COMMAND_CHARS,
  dashboardAddress,
  dashboardHandler,
  DEFAULT_LIMITS,
  EXPORT_TEXT_LIMIT,
  findRuns,
  followLines,
  GenerationService,
  isLoopback,
  linkOutOfRun,
  MAX_WALK_DEPTH,
  parseGenerationInput,
  resolveRun,
  RunUncheckedError,
} from "./mod.ts";
import { HttpError } from "./generation.ts";
import { summarizeRun } from "./routes.ts";
import {
  eventReader,
  fakeLoader,
  fakeRun,
  readEvents,
  snapshot,
  until,
} from "./_test_util.ts";
import { sleep } from "./follow.ts";

const PAGE = {
  html: "<!doctype html><p>dashboard</p>",
  js: "/*js*/",
  css: "/*css*/",
};

/** A root of runs in every state, a folder outside it, and a handler over it. */
async function setup(
  options: {
    token?: string;
    delayMs?: number;
    maxWaiting?: number;
    maxRunning?: number;
    timeoutMs?: number;
    wrongTokenDelayMs?: number;
  } = {},
) {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const root = `${base}/runs`, outside = `${base}/outside`;
  await fakeRun(`${root}/good`, { results: true });
  await fakeRun(`${root}/live`, { lockPid: Deno.pid });
  await fakeRun(`${root}/stopped`, { lockPid: 2 ** 22 + 7 }); // no such process
  await fakeRun(`${root}/sweep/r1`);
  await Deno.mkdir(`${root}/broken`);
  await Deno.writeTextFile(
    `${root}/broken/config.json`,
    '{"preset": "micro", "mod',
  ); // half-written
  await fakeRun(`${root}/halfresults`);
  await Deno.writeTextFile(
    `${root}/halfresults/results.json`,
    '{"command": "deno ta',
  );
  await Deno.mkdir(`${root}/.hidden`);
  await Deno.writeTextFile(`${root}/.hidden/config.json`, "{}");
  await fakeRun(outside, { results: true });
  await Deno.writeTextFile(`${base}/secret.txt`, "TOP-SECRET-CONTENT");
  await Deno.symlink(outside, `${root}/escape`); // a run folder outside the root
  await fakeRun(`${root}/leaky`, { results: true });
  await Deno.remove(`${root}/leaky/report.md`);
  await Deno.symlink(`${base}/secret.txt`, `${root}/leaky/report.md`); // a file outside
  const loader = fakeLoader(options.delayMs ?? 2);
  const generation = new GenerationService(loader, {
    maxWaiting: options.maxWaiting ?? 4,
    maxRunning: options.maxRunning ?? 4,
    timeoutMs: options.timeoutMs ?? 10_000,
  });
  const handler = dashboardHandler({
    root,
    generation,
    pollMs: 20,
    keepAliveMs: 60_000,
  }, {
    page: PAGE,
    token: options.token,
    wrongTokenDelayMs: options.wrongTokenDelayMs,
  });
  const get = (path: string, init?: RequestInit) =>
    handler(new Request(`http://127.0.0.1${path}`, init));
  return {
    base,
    root,
    outside,
    handler,
    get,
    generation,
    loader,
    done: () => Deno.remove(base, { recursive: true }),
  };
}

Deno.test("checkRunId() accepts relative paths of plain names and refuses traversal, absolute paths and odd characters", () => {
  assertEquals(checkRunId("a/b_c.1"), ["a", "b_c.1"]);
  for (
    const bad of [
      "",
      "..",
      "a/../b",
      "/etc",
      "a//b",
      "a/",
      ".hidden",
      "a\\b",
      "a\u0000b",
      "a%2e",
      "-x",
      " a",
      "=a",
      "a#b",
      "a?b",
      "a&b",
      'a"b',
      "a'b",
      "a\tb",
      "a\u202eb", // a format character (right-to-left override)
      "a/b/c/d",
    ]
  ) {
    assertThrows(
      () => checkRunId(bad),
      BadRunIdError,
      undefined,
      JSON.stringify(bad),
    );
  }
});

Deno.test("run folders named with spaces, '=', ',', '+' or letters beyond ASCII are listed and served by id; a name an id cannot carry is listed in /api/runs' skipped with why, not hidden", async () => {
  const s = await setup();
  try {
    const names = ["run 1", "lr=0.001,bs=4+ema", "résumé", "数据/ε-run"];
    for (const n of names) await fakeRun(`${s.root}/${n}`, { results: true });
    await fakeRun(`${s.root}/odd#1`);
    await fakeRun(`${s.root}/.quiet`);
    const list = await (await s.get("/api/runs")).json();
    const ids = list.runs.map((r: { id: string }) => r.id);
    for (const n of names) assert(ids.includes(n), `${n} not in ${ids}`);
    assertEquals(list.skipped, [{
      folder: "odd#1",
      reason:
        'folder "odd#1" is not listed: its name has "#", outside letters, digits, spaces and . _ - = , + (rename it to list it)',
    }, {
      // The setup's link to a run outside the root: named, not read.
      folder: "escape",
      reason:
        'folder "escape" is not listed: it is a link out of --runs (nothing outside is read); move the run inside, or serve the folder that holds it',
    }]);
    for (const n of names) {
      const r = await s.get(
        `/api/run/file?run=${encodeURIComponent(n)}&name=report.md`,
      );
      assertEquals(r.status, 200, n);
      assert((await r.text()).startsWith("# Report"));
    }
    const odd = await s.get("/api/run?run=odd%231");
    assertEquals(odd.status, 400);
    assertMatch((await odd.json()).error, /segment "odd#1" has "#"/);
  } finally {
    await s.done();
  }
});

Deno.test("a folder whose config.json is a dangling link is a run: its model folders are not listed or resolved as runs", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/a/seed-0/ar`, { recursive: true });
    await Deno.writeTextFile(`${root}/a/seed-0/ar/config.json`, "{}");
    await Deno.symlink(`${root}/gone.json`, `${root}/a/config.json`);
    // Planted: exists() by stat (core's pathExists) lists a/seed-0/ar.
    assertEquals((await findRuns(root)).map((r) => r.id), ["a"]);
    assertEquals(await resolveRun(root, "a/seed-0/ar"), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("findRuns() lists runs and sweep members by id, and skips hidden folders and symlinks out of the root", async () => {
  const s = await setup();
  try {
    assertEquals((await findRuns(s.root)).map((r) => r.id), [
      "broken",
      "good",
      "halfresults",
      "leaky",
      "live",
      "stopped",
      "sweep/r1",
    ]);
    assertEquals(await resolveRun(s.root, "escape"), undefined);
    assertEquals(await resolveRun(s.root, "sweep/r1"), `${s.root}/sweep/r1`);
    assertEquals(await resolveRun(s.root, "sweep"), undefined); // a sweep is not a run
  } finally {
    await s.done();
  }
});

Deno.test("inspectRun() tells running, finished, stopped and corrupt folders apart without throwing", async () => {
  const s = await setup();
  try {
    const status = async (id: string) => {
      const o = await inspectRun(`${s.root}/${id}`);
      return [o.status, o.reason?.replace(s.root, "ROOT")];
    };
    assertEquals(await status("good"), ["finished", undefined]);
    assertEquals(await status("live"), ["running", undefined]);
    assertEquals(await status("stopped"), ["stopped", undefined]);
    const broken = await status("broken");
    assertEquals(broken[0], "corrupt");
    assertMatch(broken[1]!, /^ROOT\/broken\/config.json is not valid JSON/);
    const half = await status("halfresults");
    assertEquals(half[0], "corrupt");
    assertMatch(half[1]!, /results.json is not valid JSON/);
    await Deno.writeTextFile(
      `${s.root}/broken/config.json`,
      '{"models": 3, "seeds": 1e9}',
    );
    assertMatch((await status("broken"))[1]!, /not a run's configuration/);
  } finally {
    await s.done();
  }
});

Deno.test("GET /api/runs lists every run with its state; a corrupt folder is shown as such, not an error", async () => {
  const s = await setup();
  try {
    const res = await s.get("/api/runs");
    assertEquals(res.status, 200);
    const { runs } = await res.json();
    const byId = Object.fromEntries(
      runs.map((r: { id: string; status: string }) => [r.id, r]),
    );
    assertEquals(Object.keys(byId).sort(), [
      "broken",
      "good",
      "halfresults",
      "leaky",
      "live",
      "stopped",
      "sweep/r1",
    ]);
    assertEquals(byId.good.status, "finished");
    assertEquals(byId.good.headline[0].model, "ar");
    assertEquals(byId.live.status, "running");
    assertEquals(byId.broken.status, "corrupt");
    assert(
      !byId.broken.reason.includes(s.root),
      "no path on disk reaches the page",
    );
    const one = await (await s.get("/api/run?run=broken")).json();
    assertEquals(one.status, "corrupt");
  } finally {
    await s.done();
  }
});

Deno.test("the server refuses what is not a run of the root: bad ids 400, traversal and symlinks out 404, other methods 405", async () => {
  const s = await setup();
  const before = await snapshot(s.base);
  try {
    const cases: [string, number, RequestInit?][] = [
      ["/api/run", 400],
      ["/api/run?run=..%2Foutside", 400],
      ["/api/run?run=%2E%2E", 400],
      ["/api/run?run=%2Fetc%2Fpasswd", 400],
      ["/api/run?run=good%00", 400],
      ["/api/run?run=good%5C..", 400],
      ["/api/run?run=%E0%A4%A", 400], // a broken percent-encoding
      ["/api/run?run=good%252F..", 400],
      ["/api/run?run=nope", 404],
      ["/api/run?run=escape", 404], // a symlink to a run outside
      ["/api/run?run=sweep", 404],
      ["/api/run/file?run=good&name=..%2F..%2Fsecret.txt", 400],
      ["/api/run/file?run=good&name=model.safetensors", 400],
      ["/api/run/file?run=leaky&name=report.md", 404], // a symlinked file out
      ["/api/run/file?run=good&name=samples.txt", 404],
      ["/api/run/metrics?run=good&from=-1", 400],
      ["/api/run/model?run=good&seed=0&model=ar&part=..", 400],
      ["/api/run/model?run=good&seed=9&model=ar&part=weights", 404],
      ["/../secret.txt", 404],
      ["/%2e%2e/secret.txt", 404],
      ["/etc/passwd", 404],
      ["/api/runs", 405, { method: "DELETE" }],
      ["/api/run?run=good", 405, { method: "PUT", body: "x" }],
      ["/api/nothing", 405, { method: "POST", body: "{}" }],
    ];
    for (const [path, status, init] of cases) {
      const res = await s.get(path, init);
      assertEquals(
        res.status,
        status,
        `${init?.method ?? "GET"} ${path}: ${await res.clone().text()}`,
      );
      const body = await res.json();
      assert(
        typeof body.error === "string" && !body.error.includes("\n"),
        path,
      );
      assert(!JSON.stringify(body).includes("TOP-SECRET"), path);
    }
    const ok = await s.get("/api/run/file?run=good&name=report.md");
    assertEquals([ok.status, (await ok.text()).startsWith("# Report")], [
      200,
      true,
    ]);
    const weights = await s.get(
      "/api/run/model?run=good&seed=0&model=ar&part=weights",
    );
    assertEquals(await weights.text(), "weights");
  } finally {
    assertEquals(await snapshot(s.base), before, "the server wrote nothing");
    await s.done();
  }
});

Deno.test("the file route serves a run's file up to the export's cap: a larger one is refused with 413 in one line naming it and the cap; one still growing is cut where it was checked", async () => {
  const s = await setup();
  const path = `${s.root}/good/samples.txt`;
  const sized = async (bytes: number) => {
    const file = await Deno.open(path, { write: true, create: true });
    await file.truncate(bytes); // sparse
    file.close();
  };
  try {
    await sized(EXPORT_TEXT_LIMIT + 1);
    const big = await s.get("/api/run/file?run=good&name=samples.txt");
    assertEquals(big.status, 413);
    assertEquals(
      (await big.json()).error,
      "Cannot serve samples.txt of run good: it is larger than the 16.0 MiB the dashboard serves of a run's file; shorten or remove it",
    );
    await sized(EXPORT_TEXT_LIMIT);
    const full = await s.get("/api/run/file?run=good&name=samples.txt");
    assertEquals(full.status, 200);
    assertEquals((await full.arrayBuffer()).byteLength, EXPORT_TEXT_LIMIT);
    // Appended to after the response began: the bytes checked, no more.
    await Deno.writeTextFile(path, "one\n");
    const growing = await s.get("/api/run/file?run=good&name=samples.txt");
    await Deno.writeTextFile(path, "two\n".repeat(1000), { append: true });
    assertEquals(growing.headers.get("content-length"), "4");
    assertEquals(await growing.text(), "one\n");
  } finally {
    await s.done();
  }
});

Deno.test("a token guards every route when set; a wrong Host is refused on loopback", async () => {
  const s = await setup({ token: "t0ken" });
  try {
    assertEquals((await s.get("/api/runs")).status, 401);
    assertEquals(
      (await s.get("/api/runs", { headers: { authorization: "Bearer wrong" } }))
        .status,
      401,
    );
    assertEquals(
      (await s.get("/api/runs", { headers: { authorization: "Bearer t0ken" } }))
        .status,
      200,
    );
    const login = await s.get("/?token=t0ken");
    assertEquals(login.status, 303);
    const cookie = login.headers.get("set-cookie")!.split(";")[0];
    assertEquals(
      (await s.get("/api/runs", { headers: { cookie } })).status,
      200,
    );
  } finally {
    await s.done();
  }
  const handler = dashboardHandler(
    { root: "none", generation: new GenerationService(fakeLoader()) },
    { page: PAGE, hosts: ["127.0.0.1", "localhost"] },
  );
  assertEquals(
    (await handler(new Request("http://evil.example/api/runs"))).status,
    421,
  );
  assertEquals(
    (await handler(new Request("http://localhost:8000/api/runs"))).status,
    200,
  );
});

Deno.test("checkListen() needs nothing on loopback and a token elsewhere (generated when not given)", () => {
  assertEquals(checkListen({ host: "127.0.0.1" }).token, undefined);
  const given = checkListen({ host: "0.0.0.0", token: "mine-of-16-chars" });
  assertEquals(given.token, "mine-of-16-chars");
  assert(given.warning!.startsWith("warning: listening on 0.0.0.0"));
  const made = checkListen({ host: "0.0.0.0" });
  assertMatch(made.token!, /^[0-9a-f]{48}$/);
  assert(made.warning!.includes(made.token!));
});

// Waits (polling, up to 10 s) until `got` holds at least n items: a fixed
// sleep lost the race to the 10 ms poller on a loaded machine.
async function gotAtLeast(got: readonly unknown[], n: number) {
  for (let waited = 0; got.length < n && waited < 10_000; waited += 10) {
    await sleep(10);
  }
}

Deno.test("followLines() yields complete lines of a growing file, holds back a torn line, resumes at an offset, and resets on truncation", async () => {
  const path = await Deno.makeTempFile();
  const stop = new AbortController();
  const got: unknown[] = [];
  const done = (async () => {
    for await (
      const f of followLines(path, { signal: stop.signal, pollMs: 10 })
    ) got.push(f);
  })();
  try {
    await Deno.writeTextFile(path, '{"a":1}\n{"b"', { append: true });
    await gotAtLeast(got, 1);
    await sleep(60); // time to (wrongly) yield the torn line
    assertEquals(got, [{ line: '{"a":1}', end: 8, number: 1 }]);
    await Deno.writeTextFile(path, ':2}\n{"c":3}\n', { append: true });
    await gotAtLeast(got, 3);
    assertEquals(got.slice(1), [
      { line: '{"b":2}', end: 16, number: 2 },
      { line: '{"c":3}', end: 24, number: 3 },
    ]);
    await Deno.writeTextFile(path, '{"new":1}\n'); // replaced: shorter
    await gotAtLeast(got, 5);
    assertEquals(got.slice(3), [{ reset: true }, {
      line: '{"new":1}',
      end: 10,
      number: 1,
    }]);
  } finally {
    stop.abort();
    await done;
  }
  const resumed = [];
  await Deno.writeTextFile(path, '{"x":1}\n{"y":2}\n');
  for await (const f of followLines(path, { from: 8, once: true })) {
    resumed.push(f);
  }
  assertEquals(resumed, [{ line: '{"y":2}', end: 16, number: 1 }]);
  await Deno.remove(path);
});

Deno.test("followLines() keeps a line of exactly maxLine bytes and skips one byte more, also when it arrives in two writes", async () => {
  // maxLine is the longest line kept ("a longer one is skipped"). Lines of
  // 8 and 9 bytes around maxLine = 8, the ends counted in bytes with the
  // newline. Catches `<` for `<=` (the 8-byte line lost) and a split line
  // judged by its last part only.
  const path = await Deno.makeTempFile();
  const eight = '{"a":12}', nine = '{"a":123}';
  await Deno.writeTextFile(path, `${eight}\n${nine}\n{"b":1}\n`);
  const got = [];
  for await (const f of followLines(path, { once: true, maxLine: 8 })) {
    got.push(f);
  }
  assertEquals(got, [
    { line: eight, end: 9, number: 1 },
    { skipped: 2, end: 19 },
    { line: '{"b":1}', end: 27, number: 3 },
  ]);
  // The 9-byte line in two writes, 5 bytes then 4 and its newline.
  await Deno.writeTextFile(path, "");
  const stop = new AbortController();
  const split: unknown[] = [];
  const done = (async () => {
    for await (
      const f of followLines(path, {
        signal: stop.signal,
        pollMs: 10,
        maxLine: 8,
      })
    ) split.push(f);
  })();
  try {
    await Deno.writeTextFile(path, nine.slice(0, 5), { append: true });
    await sleep(60);
    await Deno.writeTextFile(path, `${nine.slice(5)}\n${eight}\n`, {
      append: true,
    });
    await gotAtLeast(split, 2);
  } finally {
    stop.abort();
    await done;
  }
  assertEquals(split, [
    { skipped: 1, end: 10 },
    { line: eight, end: 19, number: 2 },
  ]);
  await Deno.remove(path);
});

Deno.test("GET /api/run/metrics streams the log, then each appended line; Last-Event-ID resumes without re-sending", async () => {
  const s = await setup();
  try {
    const ac = new AbortController();
    const res = await s.get("/api/run/metrics?run=live", { signal: ac.signal });
    assertEquals(
      res.headers.get("content-type"),
      "text/event-stream; charset=utf-8",
    );
    // Each write once the stream shows it read what was there: the log to
    // its end, then the line before the torn one (the torn part with it).
    const reader = eventReader(res);
    const metricCount = (ev: { event: string }[]) =>
      ev.filter((e) => e.event === "metric").length;
    await reader.until((ev) => ev.some((e) => e.event === "caught-up"));
    await Deno.writeTextFile(
      `${s.root}/live/metrics.jsonl`,
      'not json\n{"model":"ar","seed":0,"step":3,"loss":4}\n{"model":"ar","seed":0,"step":4,',
      { append: true },
    );
    await reader.until((ev) => metricCount(ev) >= 3);
    await Deno.writeTextFile(`${s.root}/live/metrics.jsonl`, '"loss":3.9}\n', {
      append: true,
    });
    const events = await reader.until((ev) => metricCount(ev) >= 4);
    await reader.cancel();
    ac.abort();
    const metrics = events.filter((e) => e.event === "metric").map((e) =>
      JSON.parse(e.data).step
    );
    assertEquals(metrics, [1, 2, 3, 4]); // the damaged line is skipped, the torn one waited for
    assertEquals(events[2].event, "caught-up");
    const lastId = events.at(-1)!.id!;
    const again = await s.get("/api/run/metrics?run=live", {
      headers: { "last-event-id": events[1].id! },
    });
    const rest = await readEvents(
      again,
      (ev) => ev.some((e) => e.event === "caught-up"),
    );
    assertEquals(
      rest.filter((e) => e.event === "metric").map((e) =>
        JSON.parse(e.data).step
      ),
      [3, 4],
    );
    assertEquals(rest.at(-1)!.id, lastId);
  } finally {
    await s.done();
  }
});

Deno.test("GET /api/run/metrics of a run whose folder is deleted ends with one `gone` event naming why; one whose folder exists without a log yet keeps waiting", async () => {
  const s = await setup();
  try {
    // Not written yet: the folder is there, metrics.jsonl is not. Once the
    // stream has looked (caught up with nothing), many polls (20 ms each)
    // pass without an end in 400 ms (the time is the thing tested); the log
    // written then is followed.
    await fakeRun(`${s.root}/fresh`);
    await Deno.remove(`${s.root}/fresh/metrics.jsonl`);
    const ac = new AbortController();
    const waiting = eventReader(
      await s.get("/api/run/metrics?run=fresh", { signal: ac.signal }),
    );
    const ended = (ev: { event: string }[]) =>
      ev.some((e) => e.event === "metric" || e.event === "gone");
    await waiting.until((ev) => ev.some((e) => e.event === "caught-up"));
    assertEquals((await waiting.until(ended, 400)).map((e) => e.event), [
      "caught-up",
    ]);
    assert(!waiting.ended, "the stream of a run without a log yet ended");
    await Deno.writeTextFile(
      `${s.root}/fresh/metrics.jsonl`,
      '{"model":"ar","seed":0,"step":1,"loss":5}\n',
    );
    const early = await waiting.until(ended);
    await waiting.cancel();
    ac.abort();
    assertEquals(early.map((e) => e.event), ["caught-up", "metric"]);

    // Deleted while followed: the stream ends by itself (the body closes),
    // its last event naming why in one line; nothing is aborted here, so
    // a timer or poll left behind would also fail the test's sanitizers.
    // Deleted once the stream read the log to its end.
    const reader = eventReader(
      await s.get("/api/run/metrics?run=live"),
    );
    await reader.until((ev) => ev.some((e) => e.event === "caught-up"));
    await Deno.remove(`${s.root}/live`, { recursive: true });
    const t0 = performance.now();
    const events = await reader.until(() => false, 5_000);
    if (!reader.ended) {
      await reader.cancel();
      throw new Error("the stream of a deleted run did not end in 5 s");
    }
    assert(performance.now() - t0 < 2_000);
    assertEquals(events.map((e) => e.event), [
      "metric",
      "metric",
      "caught-up",
      "gone",
    ]);
    assertEquals(JSON.parse(events.at(-1)!.data), {
      reason:
        "Run live's folder is gone (deleted or moved): nothing more to follow",
    });
    assert(!events.some((e) => e.data.includes(s.root))); // no path on disk
  } finally {
    await s.done();
  }
});

Deno.test("parseGenerationInput() refuses each bad field with one line naming it", () => {
  const base = { run: "r", model: "d3pm" };
  const bad: [Record<string, unknown>, string][] = [
    [
      { ...base, temperature: -0.01 },
      "temperature must be a number in [0, 5] (0: greedy), got -0.01",
    ],
    [{ ...base, temperature: 5.01 }, "temperature must be a number in [0, 5]"],
    [{ ...base, temperature: "hot" }, "temperature"],
    [{ ...base, topP: 1.5 }, "topP must be a number in (0, 1]"],
    [{ ...base, steps: 0 }, "steps must be an integer in [1, 100000]"],
    [{ ...base, steps: 2.5 }, "steps"],
    [
      { ...base, sampler: "greedy" },
      "sampler must be one of ancestral, cached, confidence",
    ],
    [
      { ...base, prompt: "x".repeat(2001) },
      "prompt is 2001 characters; at most 2000",
    ],
    [{ ...base, prompt: "a", tokens: [1] }, "not both"],
    [{ ...base, tokens: [] }, "tokens must be a non-empty array"],
    [{ ...base, tokens: [-1] }, "tokens"],
    [{ ...base, rng: -1 }, "rng"],
    [{ ...base, seed: 1e6 }, "seed"],
    [{ ...base, extra: 1 }, 'unknown field "extra"'],
    [{ model: "d3pm" }, "run must be a run id"],
    [{ run: "r", model: "../x" }, "model must be a contestant's kind"],
  ];
  for (const [body, msg] of bad) {
    assertThrows(
      () => parseGenerationInput(body, DEFAULT_LIMITS),
      HttpError,
      msg,
      JSON.stringify(body),
    );
  }
  assertThrows(
    () => parseGenerationInput([], DEFAULT_LIMITS),
    HttpError,
    "a JSON object",
  );
});

Deno.test("parseGenerationInput() takes each bound's own value and refuses the next one past it", () => {
  const base = { run: "r", model: "d3pm" };
  const parse = (extra: Record<string, unknown>) =>
    parseGenerationInput({ ...base, ...extra }, DEFAULT_LIMITS);
  const defaults = parse({});
  assertEquals([defaults.seed, defaults.rng, defaults.topP], [0, 0, 1]);
  const top = 2 ** 24 - 1; // the largest token id taken
  const edges = parse({ tokens: [0, top], seed: 999, rng: 2 ** 32 - 1 });
  assertEquals(
    [edges.tokens, edges.seed, edges.rng],
    [[0, top], 999, 2 ** 32 - 1],
  );
  assertEquals(parse({ steps: 100_000 }).steps, 100_000);
  assertEquals(parse({ temperature: 5 }).temperature, 5);
  assertEquals(parse({ topP: 1 }).topP, 1);
  const prompt = "x".repeat(DEFAULT_LIMITS.maxPromptChars);
  assertEquals(parse({ prompt }).prompt, prompt);
  assertEquals(parse({ tokens: new Array(4096).fill(1) }).tokens?.length, 4096);
  const bad: [Record<string, unknown>, string][] = [
    [{ tokens: new Array(4097).fill(1) }, "at most 4,096 token ids"],
    [{ tokens: [top + 1] }, "tokens must be"],
    [{ seed: 1000 }, "seed must be an integer in [0, 999], got 1000"],
    [{ rng: 2 ** 32 }, "rng must be an integer in [0, 4294967295]"],
    [{ steps: 100_001 }, "steps must be an integer in [1, 100000]"],
    [{ topP: 0 }, "topP must be a number in (0, 1], got 0"],
  ];
  for (const [extra, msg] of bad) {
    assertThrows(() => parse(extra), HttpError, msg, JSON.stringify(extra));
  }
});

async function generate(
  s: Awaited<ReturnType<typeof setup>>,
  body: unknown,
  signal?: AbortSignal,
) {
  return await s.get("/api/generate", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
}

Deno.test("POST /api/generate streams the start row and a frame per step, masks filling in", async () => {
  const s = await setup();
  try {
    const res = await generate(s, {
      run: "good",
      model: "d3pm",
      steps: 4,
      prompt: "ab",
    });
    assertEquals(res.status, 200);
    const events = await readEvents(
      res,
      (ev) => ev.some((e) => e.event === "done" || e.event === "error"),
    );
    assertEquals(events.map((e) => e.event), [
      "start",
      "frame",
      "frame",
      "frame",
      "frame",
      "done",
    ]);
    const start = JSON.parse(events[0].data);
    assertEquals(start.tokens, [97, 98, 259, 259, 259, 259, 259, 259]);
    assertEquals(start.given, [0, 1]);
    const masked = events.slice(1, 5).map((e) =>
      JSON.parse(e.data).tokens.filter((x: number) => x === 259).length
    );
    assertEquals(masked, [5, 4, 3, 0]);
    assert(JSON.parse(events[4].data).tokensPerSecond > 0);
    // Refusals that need the run: a model it has not, a row of the wrong length.
    assertEquals(
      (await generate(s, { run: "good", model: "mlm" })).status,
      404,
    );
    const wrong = await generate(s, {
      run: "good",
      model: "d3pm",
      tokens: [1, 2, 259],
    });
    assertEquals(wrong.status, 400);
    assertEquals(
      (await wrong.json()).error,
      "tokens must be a row of 8 ids (the model's context), got 3",
    );
    assertEquals(
      (await s.get("/api/generate", { method: "POST", body: "{}" })).status,
      415,
    );
    for (
      const type of ["application/jsonp", "text/plain", "application/json-seq"]
    ) {
      const r = await s.get("/api/generate", {
        method: "POST",
        headers: { "content-type": type },
        body: "{}",
      });
      assertEquals(r.status, 415, type);
      await r.body?.cancel();
    }
    assertEquals(
      (await s.get("/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{x",
      })).status,
      400,
    );
    assertEquals(
      (await s.get("/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: " ".repeat(300_000),
      })).status,
      413,
    );
  } finally {
    await s.done();
  }
});

Deno.test("generation is queued per model with a bound: beyond it 429, and a client that leaves frees its place", async () => {
  const s = await setup({ delayMs: 30, maxWaiting: 1 });
  try {
    const first = new AbortController();
    const running = await generate(
      s,
      { run: "good", model: "d3pm", steps: 50 },
      first.signal,
    );
    // Read, never cancelled until the client leaves below: a body
    // cancelled at its first frame freed the model before the requests
    // after it came, on a loaded machine.
    const runningEvents = eventReader(running);
    const waiting = generate(s, { run: "good", model: "d3pm", steps: 2 }); // waits for the first
    await until(() => s.generation.waiting === 1, "the second request queued");
    const refused = await generate(s, { run: "good", model: "d3pm", steps: 2 });
    assertEquals(refused.status, 429);
    assertMatch((await refused.json()).error, /busy/);
    const other = await generate(s, { run: "good", model: "ar", steps: 2 }); // another model: its own queue
    assertEquals(other.status, 200);
    await other.body?.cancel();
    await until(
      () => s.generation.cancelled === 1,
      "the other model's generation, its client gone, cancelled",
    );
    await runningEvents.until((ev) => ev.some((e) => e.event === "frame"));
    // The first client leaves: its generation stops at the next step.
    first.abort();
    await runningEvents.cancel();
    const second = await waiting;
    const events = await readEvents(
      second,
      (ev) => ev.some((e) => e.event === "done"),
    );
    assertEquals(events.at(-1)!.event, "done");
    await until(
      () => s.generation.cancelled === 2 && s.generation.completed === 1,
      "the abandoned generation cancelled, the second completed",
    );
    assertEquals(s.generation.refused, 1);
  } finally {
    await s.done();
  }
});

Deno.test("generations running over all models are bounded: a request for an idle model beyond it gets 429 in one line, a client that leaves frees its place, a model's queue still takes over its place", async () => {
  const s = await setup({ delayMs: 30, maxRunning: 2 });
  try {
    const leaves = new AbortController();
    const a = await generate(
      s,
      { run: "good", model: "d3pm", steps: 40 },
      leaves.signal,
    );
    const b = await generate(s, { run: "good", model: "ar", steps: 40 });
    assertEquals([a.status, b.status], [200, 200]);
    const aEvents = eventReader(a); // cancelled only when its client leaves
    assertEquals(s.generation.running, 2);
    // A third model (another run's): none of its own running, the bound reached.
    const third = await generate(s, {
      run: "sweep/r1",
      model: "d3pm",
      steps: 2,
    });
    assertEquals(third.status, 429);
    assertEquals(
      (await third.json()).error,
      "The server is busy: 2 generations run over all models (the bound); retry in a moment",
    );
    // One waiting behind a running model is its model's queue's, not refused.
    const behind = generate(s, { run: "good", model: "ar", steps: 1 });
    await until(() => s.generation.waiting === 1, "the request behind queued");
    assertEquals(s.generation.refused, 1);
    await aEvents.until((ev) => ev.some((e) => e.event === "frame"));
    leaves.abort(); // the client leaves: its place in the bound is freed
    await aEvents.cancel();
    await until(() => s.generation.running === 1, "the left one's place freed");
    const now = await generate(s, { run: "sweep/r1", model: "d3pm", steps: 2 });
    assertEquals(now.status, 200);
    const events = await readEvents(
      now,
      (ev) => ev.some((e) => e.event === "done"),
    );
    assertEquals(events.at(-1)!.event, "done");
    await b.body?.cancel(); // b leaves: the one behind it takes over its place
    const next = await behind;
    assertEquals(next.status, 200);
    await readEvents(next, (ev) => ev.some((e) => e.event === "done"));
    await until(() => s.generation.running === 0, "every place freed");
    const health = await (await s.get("/api/health")).json();
    assertEquals([health.generation.running, health.generation.refused], [
      0,
      1,
    ]);
  } finally {
    await s.done();
  }
});

Deno.test("a generation over its time limit ends with a 504 error event and frees the model", async () => {
  const s = await setup({ delayMs: 40, timeoutMs: 150 });
  try {
    const res = await generate(s, { run: "good", model: "d3pm", steps: 50 });
    const events = await readEvents(
      res,
      (ev) => ev.some((e) => e.event === "error" || e.event === "done"),
    );
    assertEquals(events.at(-1)!.event, "error");
    assertMatch(
      JSON.parse(events.at(-1)!.data).error,
      /timed out after 0.15 s/,
    );
    const next = await generate(s, { run: "good", model: "d3pm", steps: 1 });
    assertEquals(next.status, 200);
    await readEvents(next, (ev) => ev.some((e) => e.event === "done"));
  } finally {
    await s.done();
  }
});

Deno.test("what only the model can check is refused with its status before any event: steps over T, a time-out while waiting; refusals are counted as invalid (bad requests), neither failed nor cancelled", async () => {
  const s = await setup({ delayMs: 30, timeoutMs: 300 });
  try {
    const over = await generate(s, { run: "good", model: "d3pm", steps: 51 });
    assertEquals(over.status, 400);
    assertEquals(
      (await over.json()).error,
      "steps must be at most the process's T = 50, got 51",
    );
    assertEquals(
      [s.generation.invalid, s.generation.failed, s.generation.cancelled],
      [1, 0, 0],
    );
    assertEquals((await (await s.get("/api/health")).json()).generation, {
      running: 0,
      completed: 0,
      cancelled: 0,
      refused: 0,
      failed: 0,
      invalid: 1,
    });
    // The model holds its place for 50 × 30 ms, past the 300 ms limit: the
    // one waiting behind it times out waiting — a 504 naming it, not a 500.
    const first = await generate(s, { run: "good", model: "d3pm", steps: 50 });
    assertEquals(first.status, 200);
    const waited = await generate(s, { run: "good", model: "d3pm", steps: 1 });
    assertEquals(waited.status, 504);
    assertMatch(
      (await waited.json()).error,
      /^Generation timed out after 0.3 s waiting for the model/,
    );
    await readEvents(first, (ev) => ev.some((e) => e.event === "error"));
  } finally {
    await s.done();
  }
});

Deno.test("a causal model refuses steps (it draws one token per position) with a 400 before any event", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    await fakeRun(`${base}/r`, { models: "ar" });
    const causal = fakeLoader(1);
    const generation = new GenerationService(async (dir, seed, kind) => {
      const m = await causal(dir, seed, kind);
      return {
        ...m,
        contestant: {
          ...m.contestant,
          kind: "ar",
          network: "causal",
          unmasking: undefined,
        },
      };
    });
    const handler = dashboardHandler({ root: base, generation }, {
      page: PAGE,
    });
    const res = await handler(
      new Request("http://127.0.0.1/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ run: "r", model: "ar", steps: 4 }),
      }),
    );
    assertEquals(res.status, 400);
    assertMatch(
      (await res.json()).error,
      /^steps sets a denoiser's unmasking steps; the causal model ar draws one token per position/,
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("the page is served with a restrictive content security policy", async () => {
  const s = await setup();
  try {
    const res = await s.get("/");
    assertEquals(await res.text(), PAGE.html);
    assertMatch(
      res.headers.get("content-security-policy")!,
      /default-src 'self'/,
    );
    assertEquals(await (await s.get("/app.js")).text(), "/*js*/");
  } finally {
    await s.done();
  }
});

Deno.test("a run with a link out of it is read nowhere: listed as corrupt naming the link (not quoting the file), every route 404; a model's folder is not a run", async () => {
  const s = await setup();
  try {
    await Deno.writeTextFile(`${s.base}/secret.json`, "SECRET-abcdef not json");
    const links: Record<string, string> = {
      results: "results.json",
      data: "data.json",
      model: "seed-0/ar",
      config: "config.json",
    };
    for (const [run, link] of Object.entries(links)) {
      await fakeRun(`${s.root}/${run}`, { results: true });
      await Deno.remove(`${s.root}/${run}/${link}`, { recursive: true })
        .catch(() => {});
      await Deno.symlink(
        link === "seed-0/ar"
          ? `${s.outside}/seed-0/ar`
          : `${s.base}/secret.json`,
        `${s.root}/${run}/${link}`,
      );
    }
    const before = await snapshot(s.root);
    const listed = (await (await s.get("/api/runs")).json()).runs as {
      id: string;
      status: string;
      reason?: string;
    }[];
    for (const [run, link] of Object.entries(links)) {
      const r = listed.find((x) => x.id === run);
      assertEquals(r?.status, "corrupt", run);
      assertEquals(
        r?.reason,
        `Run "${run}" is not served: ${link} is a link out of the run folder (the dashboard reads only what lies inside a run); replace the link with the file`,
      );
      for (
        const path of [
          `/api/run?run=${run}`,
          `/api/run/vocab?run=${run}`,
          `/api/run/file?run=${run}&name=report.md`,
          `/api/run/model?run=${run}&seed=0&model=ar&part=weights`,
          `/api/run/unmasking?run=${run}&seed=0&model=ar`,
          `/api/run/tokenize?run=${run}&text=a`,
        ]
      ) {
        const res = await s.get(path);
        const text = await res.text();
        assertEquals(res.status, 404, path);
        assert(!text.includes("SECRET"), `${path}: ${text}`);
      }
    }
    assert(!JSON.stringify(listed).includes("SECRET"));
    // Nothing listed lies inside another run.
    assert(
      !listed.some((r) => r.id.startsWith("config/")),
      JSON.stringify(listed),
    );
    assertEquals((await s.get("/api/run?run=good/seed-0/ar")).status, 404);
    assertEquals(await snapshot(s.root), before);
  } finally {
    await s.done();
  }
});

Deno.test("linkOutOfRun() on a settled run it found clean (kept, checked by a stat per folder) still finds a link out as a walk does: one added deep inside or at the top, a dangling link whose target appears outside, a link inside by way of a link outside that is retargeted, a model's folder swapped for one holding a link out", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  const outside = `${base}/outside`;
  await Deno.mkdir(outside);
  await Deno.writeTextFile(`${outside}/secret.txt`, "TOP-SECRET");
  const names = ["deep", "top", "dangling", "alias", "swapped", "same"];
  const run = Object.fromEntries(names.map((n) => [n, `${base}/${n}`]));
  for (const dir of Object.values(run)) await fakeRun(dir);
  // Dangling now: a link to a file outside that is not there yet.
  await Deno.symlink(
    `${outside}/later.txt`,
    `${run.dangling}/seed-0/ar/notes.txt`,
  );
  // Inside now, by way of a link outside the run (base/via → the run).
  await Deno.symlink(run.alias, `${base}/via`);
  await Deno.symlink(
    `${base}/via/config.json`,
    `${run.alias}/seed-0/ar/copy.json`,
  );
  await Deno.mkdir(`${base}/spare`);
  await Deno.symlink(
    `${outside}/secret.txt`,
    `${base}/spare/model.safetensors`,
  );
  await sleep(2_300); // settled: each folder's times can show a change
  for (const dir of Object.values(run)) {
    assertEquals(await linkOutOfRun(dir), undefined, dir);
    assertEquals(await linkOutOfRun(dir), undefined, dir); // kept: checked
  }
  await Deno.symlink(
    `${outside}/secret.txt`,
    `${run.deep}/seed-0/d3pm/extra.json`,
  );
  await Deno.symlink(`${outside}/secret.txt`, `${run.top}/samples.txt`);
  await Deno.writeTextFile(`${outside}/later.txt`, "now there");
  await Deno.writeTextFile(`${outside}/config.json`, "{}");
  await Deno.remove(`${base}/via`);
  await Deno.symlink(outside, `${base}/via`);
  await Deno.rename(`${run.swapped}/seed-0/ar`, `${base}/old-ar`);
  await Deno.rename(`${base}/spare`, `${run.swapped}/seed-0/ar`);
  const want: Record<string, string | undefined> = {
    deep: "seed-0/d3pm/extra.json",
    top: "samples.txt",
    dangling: "seed-0/ar/notes.txt",
    alias: "seed-0/ar/copy.json",
    swapped: "seed-0/ar/model.safetensors",
    same: undefined,
  };
  for (const n of names) assertEquals(await linkOutOfRun(run[n]), want[n], n);
  await Deno.remove(base, { recursive: true });
});

/** The runs /api/runs lists, by id. */
async function listedRuns(
  s: { get: (path: string) => Promise<Response> },
): Promise<Map<string, { status: string; reason?: string }>> {
  const { runs } = await (await s.get("/api/runs")).json();
  return new Map(
    (runs as { id: string; status: string; reason?: string }[]).map((
      r,
    ) => [r.id, r]),
  );
}

Deno.test("linkOutOfRun() gives no verdict, and keeps none, when a folder of a run cannot be read (out of file descriptors): the run is 503 and listed as corrupt, and its link out is found once the folder reads (a folder that fails once is walked again)", async () => {
  const s = await setup();
  const dir = `${s.root}/good`, failing = `${dir}/seed-0/ar`;
  const readDir = Deno.readDir;
  try {
    await Deno.symlink(`${s.base}/secret.txt`, `${failing}/notes.json`);
    await sleep(2_300); // settled: a clean verdict would be kept
    // readdir fails with EMFILE there; lstat and realPath still work.
    (Deno as { readDir: typeof Deno.readDir }).readDir = (path) => {
      if (String(path) === failing) {
        throw Object.assign(
          new Error(`Too many open files (os error 24): readdir '${path}'`),
          { code: "EMFILE" },
        );
      }
      return readDir(path);
    };
    const why =
      "its folder seed-0/ar could not be read (EMFILE), so its links could not be checked; try again";
    await assertRejects(
      () => linkOutOfRun(dir, "good"),
      RunUncheckedError,
      `Run "good" is not served: ${why}`,
    );
    const res = await s.get("/api/run?run=good");
    const text = await res.text();
    assertEquals(res.status, 503, text);
    assert(text.includes(why) && !text.includes(s.base), text);
    const listed = (await listedRuns(s)).get("good");
    assertEquals(
      listed,
      {
        id: "good",
        status: "corrupt",
        reason: `Run "good" is not served: ${why}`,
      } as typeof listed,
    );
  } finally {
    (Deno as { readDir: typeof Deno.readDir }).readDir = readDir;
  }
  try {
    // Nothing was kept: the next walk reads the folder and finds the link.
    assertEquals(await linkOutOfRun(dir), "seed-0/ar/notes.json");
    // A folder that fails once (renamed while walked) is walked again.
    await Deno.remove(`${failing}/notes.json`);
    let fails = 1;
    (Deno as { readDir: typeof Deno.readDir }).readDir = (path) => {
      if (String(path) === failing && fails-- > 0) {
        throw new Deno.errors.NotFound(`readdir '${path}'`);
      }
      return readDir(path);
    };
    try {
      assertEquals(await linkOutOfRun(dir, "good"), undefined);
    } finally {
      (Deno as { readDir: typeof Deno.readDir }).readDir = readDir;
    }
    await Deno.symlink(`${s.base}/secret.txt`, `${failing}/notes.json`);
    assertEquals((await s.get("/api/run?run=good")).status, 404);
  } finally {
    await s.done();
  }
});

Deno.test("linkOutOfRun() walks every folder of a run: a link out below a folder that a link inside points to (seed-0/ar → keep/a/b/ar), one in a model's best/, and a run nesting folders deeper than MAX_WALK_DEPTH is refused in one line (404, listed as corrupt)", async () => {
  const s = await setup();
  try {
    const secret = `${s.base}/secret.txt`;
    const relinked = `${s.root}/relinked`;
    await fakeRun(relinked);
    await Deno.mkdir(`${relinked}/keep/a/b`, { recursive: true });
    await Deno.rename(`${relinked}/seed-0/ar`, `${relinked}/keep/a/b/ar`);
    await Deno.remove(`${relinked}/keep/a/b/ar/process.json`);
    await Deno.symlink(secret, `${relinked}/keep/a/b/ar/process.json`);
    await Deno.symlink(`${relinked}/keep/a/b/ar`, `${relinked}/seed-0/ar`);
    const best = `${s.root}/best`;
    await fakeRun(best);
    await Deno.mkdir(`${best}/seed-0/ar/best`);
    await Deno.symlink(secret, `${best}/seed-0/ar/best/model.safetensors`);
    const deepest = Array.from({ length: MAX_WALK_DEPTH }, (_, i) => `n${i}`);
    await fakeRun(`${s.root}/deep`);
    await Deno.mkdir(`${s.root}/deep/${deepest.join("/")}`, {
      recursive: true,
    });
    await fakeRun(`${s.root}/deeper`);
    const deeper = [...deepest, "n8"].join("/");
    await Deno.mkdir(`${s.root}/deeper/${deeper}`, { recursive: true });
    assertEquals(
      await linkOutOfRun(relinked),
      "keep/a/b/ar/process.json",
    );
    assertEquals(
      await linkOutOfRun(best),
      "seed-0/ar/best/model.safetensors",
    );
    assertEquals(await linkOutOfRun(`${s.root}/deep`), undefined);
    const why =
      `it nests folders more than ${MAX_WALK_DEPTH} deep (${deeper}), deeper than the dashboard checks for links out of a run`;
    await assertRejects(
      () => linkOutOfRun(`${s.root}/deeper`, "deeper"),
      RunUncheckedError,
      `Run "deeper" is not served: ${why}`,
    );
    for (const id of ["relinked", "best", "deeper"]) {
      for (
        const path of [
          `/api/run?run=${id}`,
          `/api/run/unmasking?run=${id}&seed=0&model=ar`,
          `/api/run/model?run=${id}&seed=0&model=ar&part=weights`,
        ]
      ) {
        const res = await s.get(path);
        const text = await res.text();
        assertEquals(res.status, 404, path);
        assert(!text.includes("SECRET"), `${path}: ${text}`);
      }
    }
    assertEquals((await s.get("/api/run?run=deep")).status, 200);
    const listed = await listedRuns(s);
    assertEquals(
      listed.get("deeper")?.reason,
      `Run "deeper" is not served: ${why}`,
    );
    for (const id of ["relinked", "best", "deeper"]) {
      assertEquals(listed.get(id)?.status, "corrupt", id);
    }
  } finally {
    await s.done();
  }
});

Deno.test("linkOutOfRun() refuses a run of more than MAX_RUN_ENTRIES entries in one line (404, listed as corrupt) instead of judging it by the entries it looked at", async () => {
  const s = await setup();
  try {
    const dir = `${s.root}/many`;
    await fakeRun(dir);
    await Deno.mkdir(`${dir}/aaa`);
    for (let i = 0; i < 10_001; i++) {
      Deno.writeTextFileSync(`${dir}/aaa/f${i}`, "");
    }
    await Deno.symlink(
      `${s.base}/secret.txt`,
      `${dir}/seed-0/ar/notes.json`,
    );
    const why =
      "it holds more than 10,000 files and folders, more than the dashboard checks for links out of a run";
    await assertRejects(
      () => linkOutOfRun(dir, "many"),
      RunUncheckedError,
      `Run "many" is not served: ${why}`,
    );
    const res = await s.get("/api/run?run=many");
    assertEquals(
      [res.status, await res.text()].join(" "),
      `404 ${JSON.stringify({ error: `Run "many" is not served: ${why}` })}`,
    );
    assertEquals((await listedRuns(s)).get("many")?.status, "corrupt");
    await Deno.remove(`${dir}/aaa`, { recursive: true });
    assertEquals(await linkOutOfRun(dir), "seed-0/ar/notes.json");
  } finally {
    await s.done();
  }
});

Deno.test("an error quoting a file of a run names it by run id, never by its path on disk", async () => {
  const s = await setup();
  try {
    await Deno.writeTextFile(`${s.root}/good/data.json`, "{damaged");
    const res = await s.get("/api/run/vocab?run=good");
    const { error } = await res.json();
    assertEquals(res.status, 503);
    assertMatch(
      error,
      /^Cannot read the vocabulary of run good: the model's files are damaged: good\/data\.json is not valid JSON/,
    );
    assert(!error.includes(s.base), error);
  } finally {
    await s.done();
  }
});

Deno.test("a generation request whose body never finishes is answered 408 after the body's time limit, not waited for without end", async () => {
  const s = await setup();
  try {
    const handler = dashboardHandler(
      { root: s.root, generation: s.generation, bodyTimeoutMs: 100 },
      { page: PAGE },
    );
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"run": "go'));
      }, // and nothing more
      cancel() {
        cancelled = true;
      },
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const res = await Promise.race([
      handler(
        new Request("http://127.0.0.1/api/generate", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
        }),
      ),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("still waiting")), 3000);
      }),
    ]).finally(() => clearTimeout(timer));
    assertEquals(res.status, 408);
    assertEquals(
      (await res.json()).error,
      "The request body did not arrive within 0.1 s",
    );
    assert(cancelled, "the body was cancelled");
  } finally {
    await s.done();
  }
});

Deno.test("a run retrained in its folder is loaded again: the model kept for it is dropped and released once its files change", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    await fakeRun(`${base}/r`);
    const inner = fakeLoader(1);
    let released = 0;
    const loader = Object.assign(
      async (dir: string, seed: number, kind: string) => {
        const m = await inner(dir, seed, kind);
        return { ...m, placed: { ...m.placed, dispose: () => released++ } };
      },
      { loads: 0 },
    );
    const service = new GenerationService(loader);
    const a = await service.model(`${base}/r`, 0, "d3pm");
    assertEquals(await service.model(`${base}/r`, 0, "d3pm"), a); // kept
    assertEquals(inner.loads, 1);
    // deno task experiment --force: new weights in the same place.
    await Deno.writeTextFile(
      `${base}/r/seed-0/d3pm/model.safetensors`,
      "retrained weights",
    );
    const b = await service.model(`${base}/r`, 0, "d3pm");
    assert(a !== b, "the old model was served");
    assertEquals([inner.loads, released], [2, 1]);
    await service.close();
    assertEquals(released, 2);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("the vocabulary of a run is read again once its files change (a run replaced in its folder), not served from the cache", async () => {
  const s = await setup();
  try {
    const first = await s.get("/api/run/vocab?run=good");
    assertEquals((await first.json()).pieces.length, 260);
    // The folder now holds a run whose data record names another tokenizer.
    await Deno.writeTextFile(
      `${s.root}/good/data.json`,
      JSON.stringify({
        sha256: { train: "a", valid: "b", test: "c" },
        tokenizer: { id: "bpe-other", vocabSize: 512 },
      }),
    );
    const again = await s.get("/api/run/vocab?run=good");
    assertEquals(again.status, 503); // in its own words: not called damaged
    assertMatch(
      (await again.json()).error,
      /^Cannot read the vocabulary of run good: (?!the model.s files are damaged).*not the tokenizer the run built \(bpe-other/,
    );
  } finally {
    await s.done();
  }
});

// A run with a torn config.json, or a results.json copied from another run,
// was answered "The run has no model d3pm of seed 0" — whatever it trained.
Deno.test("a generation, model file, vocabulary or tokenizing of a corrupt run (a results.json that is not JSON included) is refused with 404 naming why in one wording, by run id, not as a model it lacks", async () => {
  const s = await setup();
  try {
    const good = JSON.parse(
      await Deno.readTextFile(`${s.root}/good/config.json`),
    );
    await Deno.writeTextFile(
      `${s.root}/good/results.json`,
      JSON.stringify({ config: { ...good, lr: good.lr * 2 }, results: [] }),
    );
    const res = await generate(s, { run: "good", model: "d3pm", steps: 4 });
    assertEquals(res.status, 404);
    const { error } = await res.json();
    assertMatch(
      error,
      /^The run is not served: good\/results\.json was measured with --lr \S+ but its config\.json gives /,
    );
    assert(!error.includes(s.base), error);
    const torn = await s.get(
      "/api/run/model?run=broken&seed=0&model=d3pm&part=config",
    );
    assertEquals(torn.status, 404);
    assertMatch(
      (await torn.json()).error,
      /^The run is not served: broken\/config\.json is not valid JSON/,
    );
    // A results.json that is not JSON: the list calls the run corrupt, yet
    // its models, vocabulary and generations were served.
    for (
      const path of [
        "/api/run/model?seed=0&model=d3pm&part=weights&",
        "/api/run/unmasking?seed=0&model=d3pm&",
      ]
    ) {
      const res = await s.get(`${path}run=halfresults`);
      assertEquals(res.status, 404, path);
      assertMatch(
        (await res.json()).error,
        /^The run is not served: halfresults\/results\.json is not valid JSON/,
      );
    }
    const half = await generate(s, {
      run: "halfresults",
      model: "d3pm",
      steps: 4,
    });
    assertEquals(half.status, 404);
    assertMatch((await half.json()).error, /^The run is not served: /);
    // Tokenizing said "The run is corrupt", the vocabulary "The run is
    // corrupt: …": one wording, with the reason, everywhere.
    for (
      const path of [
        "/api/run/tokenize?text=a&",
        "/api/run/vocab?",
        "/api/run/file?name=config.json&",
        "/api/run/file?name=report.md&",
      ]
    ) {
      for (
        const [run, why] of [
          ["broken", /broken\/config\.json is not valid JSON/],
          ["good", /good\/results\.json was measured with --lr /],
          ["halfresults", /halfresults\/results\.json is not valid JSON/],
        ] as const
      ) {
        const res = await s.get(`${path}run=${run}`);
        assertEquals(res.status, 404, `${path}run=${run}`);
        const { error } = await res.json();
        assert(error.startsWith("The run is not served: "), error);
        assertMatch(error, why);
        assert(!error.includes(s.base), error);
      }
    }
  } finally {
    await s.done();
  }
});

// `serve --token 'a b;c'` set the cookie `d3pm_token=a b;c`, which a
// browser keeps as `a b`: every request of the page was then 401.
Deno.test("checkListen() refuses a token a cookie, an address or a header cannot carry as it is, on loopback and beyond; an empty one in its own line", () => {
  for (
    const token of ["a b;c", "a b", "a;b", "x\ny", "tök", "a,b", 'a"b', "a=b"]
  ) {
    for (const host of ["127.0.0.1", "0.0.0.0"]) {
      assertThrows(
        () => checkListen({ host, token }),
        RangeError,
        "holds a character an Authorization header cannot carry: use letters, digits and - . _ ~ + / only, then = padding at the end",
      );
    }
  }
  for (const host of ["127.0.0.1", "0.0.0.0"]) {
    assertThrows(
      () => checkListen({ host, token: "" }),
      RangeError,
      "--token is empty: give a secret",
    );
  }
  // (Beyond loopback at least 16 characters: auth_test.ts.)
  for (const token of ["A-z_0.9~", "Zm9v+YmFy/YQ==", "a+b", "abc="]) {
    assertEquals(checkListen({ host: "127.0.0.1", token }).token, token);
    const long = `${"x".repeat(16)}${token}`;
    assertEquals(checkListen({ host: "0.0.0.0", token: long }).token, long);
  }
});

// `openssl rand -base64 32` gives `/ = +`: once refused, and a `+` in an
// unencoded `?token=` came back as a space.
Deno.test('a base64 token works end to end: the printed address logs in, its cookie, the Authorization header; a token: "" is refused, not an open server', async () => {
  const token = "q+8/Zm9v+YmFy/x==";
  const s = await setup({
    token: checkListen({ host: "0.0.0.0", token }).token,
  });
  try {
    const link = new URL(dashboardAddress("127.0.0.1", { port: 80, token }));
    const login = await s.get(`/${link.search}`);
    assertEquals(login.status, 303);
    const cookie = login.headers.get("set-cookie")!.split(";")[0];
    assertEquals(
      (await s.get("/api/runs", { headers: { cookie } })).status,
      200,
    );
    assertEquals(
      (await s.get("/api/runs", {
        headers: { authorization: `Bearer ${token}` },
      }))
        .status,
      200,
    );
    // Unencoded, the `+` is a space: not the token.
    assertEquals((await s.get(`/api/runs?token=${token}`)).status, 401);
    assertEquals(
      (await s.get("/api/runs", { headers: { cookie: "d3pm_token=%E0%A4%A" } }))
        .status,
      401,
    );
  } finally {
    await s.done();
  }
  assertThrows(
    () =>
      dashboardHandler(
        { root: "none", generation: new GenerationService(fakeLoader()) },
        { page: PAGE, token: "" },
      ),
    RangeError,
    "the token is empty",
  );
});

// Written against mutants of generation.ts that the tests let pass
// (tools/mutate.ts and near misses planted by hand; see docs/testing.md).

/** `p`'s value, or "stuck" after 2 s: a turn never handed on would hang the test. */
async function unlessStuck<T>(p: Promise<T>): Promise<T | "stuck"> {
  const stop = new AbortController();
  try {
    return await Promise.race([
      p,
      sleep(2000, stop.signal).then(() => "stuck" as const),
    ]);
  } finally {
    stop.abort();
  }
}

Deno.test("a generation's client that leaves while waiting gives up its place in the model's queue: the one behind it gets the turn, and the model is free after", async () => {
  const service = new GenerationService(
    () => Promise.reject(new Error("unused")),
    { maxWaiting: 2 },
  );
  assertEquals(
    [service.refused, service.completed, service.cancelled, service.failed],
    [0, 0, 0, 0],
  );
  const stays = new AbortController().signal;
  const turn = unlessStuck<() => void>;
  for (const leaving of [0, 1]) {
    const first = await service.acquire("m", stays);
    const leaves = new AbortController();
    const waiting = [0, 1].map((i) =>
      service.acquire("m", i === leaving ? leaves.signal : stays)
    );
    leaves.abort();
    await assertRejects(() => waiting[leaving], Error, "gave up waiting");
    first();
    const next = await turn(waiting[1 - leaving]);
    if (next === "stuck") {
      throw new Error(`the waiter beside place ${leaving} got no turn`);
    }
    assertEquals(service.running, 1);
    next();
    assertEquals(service.running, 0);
    const again = await turn(service.acquire("m", stays));
    if (again === "stuck") throw new Error("the model stayed busy");
    again();
  }
  assertEquals(service.refused, 0);
});

Deno.test("a generation stream closed twice before its first read frees its turn once; a client that leaves while waiting gets 503, one already gone is never queued; one that leaves after the last frame is cancelled, not completed", async () => {
  const s = await setup({ delayMs: 1 });
  try {
    const g = s.generation;
    const dir = `${s.root}/good`;
    const input = parseGenerationInput(
      { run: "good", model: "d3pm", steps: 2 },
      g.limits,
    );
    const stays = new AbortController().signal;
    const first = await g.open(dir, input, stays);
    const second = g.open(dir, input, stays);
    await first.return(undefined); // never read: its turn goes to the next
    const held = await unlessStuck(second);
    if (held === "stuck") {
      throw new Error("a stream closed unread kept its turn");
    }
    await first.return(undefined); // again: nothing more to free
    assertEquals(g.running, 1);
    const leaves = new AbortController();
    const third = g.open(dir, input, leaves.signal);
    await until(() => g.waiting === 1, "the third queued");
    leaves.abort();
    const e = await assertRejects(
      () => third,
      HttpError,
      "The client left while waiting for the model",
    );
    assertEquals(e.status, 503);
    // A signal aborted before the request waits: refused at once, not queued.
    await assertRejects(
      () => g.acquire(`${dir}\u00000\u0000d3pm`, AbortSignal.abort()),
      Error,
      "gave up waiting",
    );
    await held.return(undefined);
    assertEquals(g.running, 0);
    const now = await g.acquire(`${dir}\u00000\u0000d3pm`, stays);
    now();
    assertEquals([g.completed, g.cancelled], [0, 1]);
    // Read up to the last frame, then gone before the stream's end.
    const late = new AbortController();
    const stream = await g.open(dir, input, late.signal);
    let frames = 0;
    while (frames < 2) {
      const r = await stream.next();
      if (!r.done && "frame" in r.value) frames++;
    }
    late.abort();
    assertEquals((await stream.next()).done, true);
    assertEquals([g.completed, g.cancelled, g.failed], [0, 2, 0]);
  } finally {
    await s.done();
  }
});

Deno.test("the models kept loaded are bounded by maxLoaded: the least recently used idle one is released, never one generating", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    for (const r of ["r", "q"]) await fakeRun(`${base}/${r}`);
    const inner = fakeLoader(1);
    const released: string[] = [];
    const loader = Object.assign(
      async (dir: string, seed: number, kind: string) => {
        const m = await inner(dir, seed, kind);
        const name = `${dir.slice(base.length + 1)} ${kind}`;
        return {
          ...m,
          placed: { ...m.placed, dispose: () => released.push(name) },
        };
      },
      { loads: 0 },
    );
    const service = new GenerationService(loader, { maxLoaded: 2 });
    const r = `${base}/r`, q = `${base}/q`;
    await service.model(r, 0, "d3pm");
    await service.model(r, 0, "ar");
    await sleep(5);
    assertEquals(released, []); // two kept: the bound's own value
    await service.model(r, 0, "d3pm"); // used again: "r ar" is the oldest
    await sleep(5);
    await service.model(q, 0, "d3pm");
    await sleep(5);
    assertEquals(released, ["r ar"]);
    assertEquals(inner.loads, 3);
    // "r d3pm" generating (its turn held): the oldest, but kept.
    const turn = await service.acquire(
      `${r}\u00000\u0000d3pm`,
      new AbortController().signal,
    );
    await service.model(q, 0, "ar");
    await sleep(5);
    assertEquals(released, ["r ar", "q d3pm"]);
    turn();
    await service.model(r, 0, "ar");
    await sleep(5);
    assertEquals(released, ["r ar", "q d3pm", "r d3pm"]);
    assertEquals(inner.loads, 5);
    await service.close();
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

// Written against mutants of routes.ts that the tests let pass (see
// docs/testing.md).
Deno.test("a run's headline is each model's mean over its seeds: test BPT and batches per second", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    const dir = `${base}/r`;
    await fakeRun(dir, { models: "ar", seeds: 2, results: true });
    await Deno.writeTextFile(
      `${dir}/results.json`,
      JSON.stringify({
        command: "deno task experiment",
        results: [3, 4].map((bpt, seed) => ({
          model: "ar",
          seed,
          test: { bpt, bound: false },
          generation: { speed: { batchesPerSecond: 2 + 4 * seed } },
        })),
      }),
    );
    const summary = await summarizeRun("r", dir);
    assertEquals(summary.headline, [{
      model: "ar",
      label: "AR",
      bpt: 3.5,
      bound: false,
      batchesPerSecond: 4,
      seeds: 2,
    }]);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a run's command is listed: a finished run's from results.json, a running one's from its lock (the script's folder left out), cut to COMMAND_CHARS", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    const lock = (dir: string, command: unknown) =>
      Deno.writeTextFile(
        `${dir}/.lock`,
        JSON.stringify({ pid: Deno.pid, command }) + "\n",
      );
    const done = `${base}/done`;
    await fakeRun(done, { results: true });
    const finished =
      "deno task experiment --preset micro --out 'runs/<b>x</b>'";
    const results = JSON.parse(await Deno.readTextFile(`${done}/results.json`));
    await Deno.writeTextFile(
      `${done}/results.json`,
      JSON.stringify({ ...results, command: finished }),
    );
    const live = `${base}/live`;
    await fakeRun(live);
    await lock(
      live,
      "deno /home/me/d3pm/examples/experiment.ts --preset micro --steps 20000 --out runs/live",
    );
    const long = `${base}/long`;
    await fakeRun(long);
    await lock(long, `deno task experiment ${"--lr 0.001 ".repeat(200)}`);
    const bare = `${base}/bare`; // an older lock: a pid, no command
    await fakeRun(bare, { lockPid: Deno.pid });
    // A lock that is a link out of the folder is not read for its command.
    const outside = `${base}/outside.lock`;
    await Deno.writeTextFile(
      outside,
      JSON.stringify({ pid: Deno.pid, command: "deno secret.ts" }),
    );
    const linked = `${base}/linked`;
    await fakeRun(linked);
    await Deno.symlink(outside, `${linked}/.lock`);
    const summary = (id: string) => summarizeRun(id, `${base}/${id}`);
    assertEquals((await summary("done")).command, finished);
    const running = await summary("live");
    assertEquals(running.status, "running");
    assertEquals(
      running.command,
      "deno …/examples/experiment.ts --preset micro --steps 20000 --out runs/live",
    );
    const cut = (await summary("long")).command!;
    assertEquals(cut.length, COMMAND_CHARS);
    assert(cut.startsWith("deno task experiment --lr 0.001 --lr"), cut);
    assert(cut.endsWith("…"), cut);
    assertEquals((await summary("bare")).command, undefined);
    const linkedRun = await summary("linked");
    // Still running (its lock's pid is live): only the command is withheld.
    assertEquals([linkedRun.status, linkedRun.command], ["running", undefined]);
    // This checkout's own root is left out wherever it appears (a path
    // with a space too); a live run's lock wins over results.json's.
    const here = decodeURIComponent(new URL("../", import.meta.url).pathname);
    const resumed = `${base}/resumed`;
    await fakeRun(resumed, { results: true });
    await lock(
      resumed,
      `deno ${here}examples/experiment.ts --resume --out ${here}runs/r`,
    );
    assertEquals(
      (await summary("resumed")).command,
      "deno …/examples/experiment.ts --resume --out …/runs/r",
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("a tokenize request without ?text=, and a generation body that is not UTF-8 or absent, are refused with 400 in one line", async () => {
  const s = await setup();
  try {
    const missing = await s.get("/api/run/tokenize?run=good");
    assertEquals(missing.status, 400);
    assertEquals((await missing.json()).error, "Missing ?text=");
    const most = DEFAULT_LIMITS.maxPromptChars;
    const whole = await s.get(
      `/api/run/tokenize?run=good&text=${"a".repeat(most)}`,
    );
    assertEquals(whole.status, 200);
    await whole.body?.cancel();
    const over = await s.get(
      `/api/run/tokenize?run=good&text=${"a".repeat(most + 1)}`,
    );
    assertEquals(over.status, 400);
    assertEquals(
      (await over.json()).error,
      `text is ${most + 1} characters; at most ${most}`,
    );
    const bad = await s.get("/api/generate", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: new Uint8Array([0x7b, 0xff, 0x7d]), // "{", a lone 0xff, "}"
    });
    assertEquals(bad.status, 400);
    assertEquals((await bad.json()).error, "The body is not UTF-8");
    const none = await s.get("/api/generate", {
      method: "POST",
      headers: { "content-type": "application/json" },
    });
    assertEquals(none.status, 400);
    // No content-length: a body streamed in three parts, 300 KiB in all,
    // refused once past the 256 KiB cap (not only a first part over it).
    const parts = [0, 1, 2].map(() => new Uint8Array(100 << 10).fill(0x20));
    const streamed = await s.handler(
      new Request("http://127.0.0.1/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: ReadableStream.from(parts),
        duplex: "half",
      } as RequestInit),
    );
    assertEquals(streamed.status, 413);
    assertEquals((await streamed.json()).error, "The body is over 256 KiB");
    // The cap's own size is read (as not JSON, here); one byte more is not.
    for (const [n, status] of [[256 << 10, 400], [(256 << 10) + 1, 413]]) {
      const r = await s.get("/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: " ".repeat(n),
      });
      assertEquals(r.status, status, `${n} bytes`);
      await r.body?.cancel();
      // Declared in content-length: refused before reading past the cap.
      const declared = await s.get("/api/generate", {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": String(n),
        },
        body: " ".repeat(n),
      });
      assertEquals(declared.status, status, `${n} bytes declared`);
      await declared.body?.cancel();
    }
    // A body in two parts is read whole, in order.
    const two = await s.handler(
      new Request("http://127.0.0.1/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: ReadableStream.from(
          ['{"run": "good", ', '"model": "d3pm", "steps": 0}'].map((t) =>
            new TextEncoder().encode(t)
          ),
        ),
        duplex: "half",
      } as RequestInit),
    );
    assertEquals(two.status, 400);
    assertMatch((await two.json()).error, /steps/);
    assertEquals(
      (await none.json()).error,
      "Bad generation request: the body is not JSON",
    );
  } finally {
    await s.done();
  }
});

Deno.test("a model file request names what is wrong with its status: a bad seed, kind or part 400; a model the run lacks or has not finished 404", async () => {
  const s = await setup();
  try {
    const ask = async (query: string) => {
      const r = await s.get(`/api/run/model?run=good&${query}`);
      return [
        r.status,
        r.status === 200 ? await r.text() : (await r.json()).error,
      ];
    };
    assertEquals(await ask("seed=x&model=d3pm&part=config"), [
      400,
      "seed must be a whole number in [0, 999]",
    ]);
    assertEquals(await ask("seed=0&model=D3PM&part=config"), [
      400,
      "model must be a contestant's kind, e.g. d3pm",
    ]);
    assertEquals(await ask("seed=5&model=d3pm&part=config"), [
      404,
      "The run has no model d3pm of seed 5",
    ]);
    assertEquals(await ask("seed=0&model=d3pm&part=x"), [
      400,
      "part must be config, process or weights",
    ]);
    assertEquals(await ask("seed=0&model=d3pm&part=config"), [200, "{}"]);
    const config = await s.get(
      "/api/run/model?run=good&seed=0&model=d3pm&part=config",
    );
    assertEquals(config.headers.get("content-type"), "application/json");
    await config.body?.cancel();
    await Deno.remove(`${s.root}/good/seed-0/d3pm/config.json`);
    assertEquals(await ask("seed=0&model=d3pm&part=config"), [
      404,
      "The d3pm model of seed 0 has no config.json",
    ]);
    await Deno.remove(`${s.root}/good/seed-0/ar/process.json`);
    assertEquals(await ask("seed=0&model=ar&part=config"), [
      404,
      "The ar model of seed 0 has not finished training",
    ]);
  } finally {
    await s.done();
  }
});

Deno.test("the file route serves a file of 1 byte and one of 64 KiB + 1 whole", async () => {
  const s = await setup();
  try {
    for (const n of [1, (64 << 10) + 1]) {
      const bytes = new Uint8Array(n).map((_, i) => 97 + (i % 26));
      await Deno.writeFile(`${s.root}/good/samples.txt`, bytes);
      const r = await s.get("/api/run/file?run=good&name=samples.txt");
      assertEquals(new Uint8Array(await r.arrayBuffer()), bytes);
    }
  } finally {
    await s.done();
  }
});

// Written against mutants of server.ts that the tests let pass
// (tools/mutate.ts and near misses planted by hand; see docs/testing.md).

Deno.test("the Host header decides, not the address dialled: another name on a loopback address is refused (DNS rebinding); [::1] and a port are this server's", async () => {
  const handler = dashboardHandler(
    { root: "none", generation: new GenerationService(fakeLoader()) },
    { page: PAGE, hosts: ["127.0.0.1", "localhost", "::1"] },
  );
  const get = (url: string, host?: string) =>
    handler(new Request(url, host ? { headers: { host } } : {}));
  const rebound = await get("http://127.0.0.1/api/runs", "evil.example:8000");
  assertEquals(rebound.status, 421);
  assertEquals(
    (await rebound.json()).error,
    'Host "evil.example" is not this server\'s (127.0.0.1, localhost, ::1)',
  );
  for (const host of ["[::1]:8000", "[::1]", "localhost:80", "127.0.0.1"]) {
    assertEquals(
      (await get("http://127.0.0.1/api/runs", host)).status,
      200,
      host,
    );
  }
  assertEquals((await get("http://[::1]:8000/api/runs")).status, 200);
  // A name one character off, or longer, is another host.
  for (const host of ["localhost.evil", "127.0.0.10", "::"]) {
    assertEquals(
      (await get("http://127.0.0.1/api/runs", host)).status,
      421,
      host,
    );
  }
});

Deno.test("a token is compared whole: one differing in its first or last character, a prefix or a longer one is refused; Bearer in any case and the cookie among others are taken", async () => {
  // Its 16 wrong tokens held back 1 ms each, not 0.1 s more each up to 1 s
  // (11.5 s): the delay is auth_test's.
  const s = await setup({ token: "t0ken", wrongTokenDelayMs: 1 });
  try {
    const status = async (headers: Record<string, string>) =>
      (await s.get("/api/runs", { headers })).status;
    for (const wrong of ["x0ken", "t0kex", "t0ke", "t0kenn", ""]) {
      assertEquals(await status({ authorization: `Bearer ${wrong}` }), 401);
      assertEquals(await status({ cookie: `d3pm_token=${wrong}` }), 401);
      assertEquals((await s.get(`/api/runs?token=${wrong}`)).status, 401);
    }
    assertEquals(await status({ authorization: "bearer t0ken" }), 200);
    assertEquals(await status({ authorization: "BEARER  t0ken" }), 200);
    assertEquals(
      await status({ cookie: "theme=dark; d3pm_token=t0ken; lang=en" }),
      200,
    );
    assertEquals(await status({ cookie: "d3pm_token2=t0ken" }), 401);
    // A token the client set itself, `=` and all, is read whole.
    const padded = await setup({ token: "dG9r=" });
    try {
      assertEquals(
        (await padded.get("/api/runs", {
          headers: { cookie: "d3pm_token=dG9r=" },
        })).status,
        200,
      );
      assertEquals(
        (await padded.get("/api/runs", {
          headers: { cookie: "d3pm_token=dG9r" },
        })).status,
        401,
      );
    } finally {
      await padded.done();
    }
  } finally {
    await s.done();
  }
});

Deno.test("only GET / with ?token= logs in (a 303 to / setting an HttpOnly, SameSite=Strict cookie); elsewhere, or by HEAD, the token is checked and the route served", async () => {
  const s = await setup({ token: "t0ken" });
  try {
    const login = await s.get("/?token=t0ken");
    assertEquals(login.status, 303);
    assertEquals(login.headers.get("location"), "/");
    assertEquals(
      login.headers.get("set-cookie"),
      "d3pm_token=t0ken; Path=/; HttpOnly; SameSite=Strict",
    );
    assertEquals(await login.text(), "");
    const runs = await s.get("/api/runs?token=t0ken");
    assertEquals(runs.status, 200);
    assert(Array.isArray((await runs.json()).runs));
    const head = await s.get("/?token=t0ken", { method: "HEAD" });
    assertEquals(head.status, 200);
    assertEquals(head.headers.get("set-cookie"), null);
    await head.body?.cancel();
    const page = await s.get("/index.html?token=t0ken");
    assertEquals([page.status, await page.text()], [200, PAGE.html]);
  } finally {
    await s.done();
  }
});

Deno.test("the page's routes: /, /index.html, /app.js and /app.css with their types and the security headers, HEAD served, a favicon 204, other methods 405, an unknown path 404 (a POST outside /api/ too)", async () => {
  const s = await setup();
  try {
    const security = {
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "x-frame-options": "DENY",
    };
    const files: [string, string, string][] = [
      ["/", "text/html; charset=utf-8", PAGE.html],
      ["/index.html", "text/html; charset=utf-8", PAGE.html],
      ["/app.js", "text/javascript; charset=utf-8", PAGE.js],
      ["/app.css", "text/css; charset=utf-8", PAGE.css],
    ];
    for (const [path, type, body] of files) {
      const res = await s.get(path);
      assertEquals(res.status, 200, path);
      assertEquals(res.headers.get("content-type"), type, path);
      for (const [k, v] of Object.entries(security)) {
        assertEquals(res.headers.get(k), v, `${path} ${k}`);
      }
      assertEquals(await res.text(), body, path);
      const head = await s.get(path, { method: "HEAD" });
      assertEquals(head.status, 200, `HEAD ${path}`);
      await head.body?.cancel();
    }
    assertEquals(
      (await s.get("/")).headers.get("content-security-policy"),
      "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'",
    );
    const icon = await s.get("/favicon.ico");
    assertEquals([icon.status, await icon.text()], [204, ""]);
    const cases: [string, RequestInit, number, string][] = [
      [
        "/api/runs",
        { method: "OPTIONS" },
        405,
        "The dashboard is read-only: OPTIONS is not served",
      ],
      [
        "/app.js",
        { method: "PATCH", body: "x" },
        405,
        "The dashboard is read-only: PATCH is not served",
      ],
      ["/upload", { method: "POST", body: "x" }, 404, "No POST route /upload"],
      [
        "/api/runs",
        { method: "POST", body: "x" },
        405,
        "No POST route /api/runs",
      ],
      ["/nowhere", {}, 404, "Nothing at /nowhere"],
    ];
    for (const [path, init, status, error] of cases) {
      const res = await s.get(path, init);
      assertEquals(
        [res.status, (await res.json()).error],
        [status, error],
        `${init.method ?? "GET"} ${path}`,
      );
    }
    const health = await s.get("/api/health");
    assertEquals(health.headers.get("content-type"), "application/json");
    const h = await health.json();
    assertEquals([h.ok, h.generation], [true, {
      running: 0,
      completed: 0,
      cancelled: 0,
      refused: 0,
      failed: 0,
      invalid: 0,
    }]);
    assert(h.memory.rss > 0);
  } finally {
    await s.done();
  }
});

Deno.test("an error quoting a file of a run names it by run id when the root is given through a link or relative to the working folder", async () => {
  const s = await setup();
  const cwd = Deno.cwd();
  try {
    await Deno.writeTextFile(`${s.root}/good/data.json`, "{damaged");
    await Deno.symlink(s.root, `${s.base}/link`);
    Deno.chdir(s.base);
    for (const root of [`${s.base}/link`, "runs", "link", "./runs/"]) {
      const handler = dashboardHandler(
        { root, generation: s.generation },
        { page: PAGE },
      );
      const res = await handler(
        new Request("http://127.0.0.1/api/run/vocab?run=good"),
      );
      const { error } = await res.json();
      assertEquals(res.status, 503, root);
      assertMatch(
        error,
        /^Cannot read the vocabulary of run good: the model's files are damaged: good\/data\.json is not valid JSON/,
        root,
      );
      assert(!error.includes(s.base), `${root}: ${error}`);
    }
  } finally {
    Deno.chdir(cwd);
    await s.done();
  }
});

Deno.test("checkListen() makes a token of 24 random bytes as 48 hex digits, two per byte", () => {
  const real = crypto.getRandomValues;
  try {
    crypto.getRandomValues = (<T extends ArrayBufferView | null>(a: T): T => {
      const b = a as unknown as Uint8Array;
      for (let i = 0; i < b.length; i++) b[i] = [0, 15, 16, 255][i % 4];
      return a;
    }) as typeof crypto.getRandomValues;
    const { token, warning } = checkListen({ host: "0.0.0.0" });
    assertEquals(token, "000f10ff".repeat(6));
    assert(
      warning!.endsWith(`${token} (generated; pass --token to choose one)`),
    );
  } finally {
    crypto.getRandomValues = real;
  }
});

// A stream opened at ?from= that reconnects sends the same address with
// Last-Event-ID: resuming at from again sent its lines twice.
Deno.test("GET /api/run/metrics of a stream opened at ?from= resumes at its Last-Event-ID when it reconnects, not at from again", async () => {
  const s = await setup();
  try {
    const steps = async (path: string, headers: Record<string, string>) => {
      const events = await readEvents(
        await s.get(path, { headers }),
        (ev) => ev.some((e) => e.event === "caught-up"),
      );
      return {
        steps: events.filter((e) => e.event === "metric").map((e) =>
          JSON.parse(e.data).step
        ),
        ids: events.filter((e) => e.event === "metric").map((e) => e.id!),
      };
    };
    const all = await steps("/api/run/metrics?run=good", {});
    assertEquals(all.steps, [1, 2]);
    assertEquals(
      (await steps("/api/run/metrics?run=good&from=0", {})).steps,
      [1, 2],
    );
    assertEquals(
      (await steps("/api/run/metrics?run=good&from=0", {
        "last-event-id": all.ids[0],
      })).steps,
      [2],
    );
    assertEquals(
      (await steps(`/api/run/metrics?run=good&from=${all.ids[0]}`, {})).steps,
      [2],
    );
  } finally {
    await s.done();
  }
});

Deno.test("isLoopback() takes 127.0.0.0/8, localhost and ::1 whole, and no name that only starts like one; checkListen() needs no token on ::1", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1"]) {
    assertEquals(isLoopback(host), true, host);
  }
  for (
    const host of [
      "127.0.0.1.example.com",
      "127.0.0.1:80",
      "x127.0.0.1",
      "localhost.example.com",
      "::",
      "0.0.0.0",
      "128.0.0.1",
    ]
  ) {
    assertEquals(isLoopback(host), false, host);
  }
  assertEquals(checkListen({ host: "::1" }), {
    token: undefined,
    warning: undefined,
  });
  assert(checkListen({ host: "127.0.0.1.example.com" }).token!.length === 48);
});
