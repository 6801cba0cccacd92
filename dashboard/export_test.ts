// `deno task serve --export DIR` wrote index.html, app.js, app.css and
// data.js into any folder: a user's own index.html beside their files was
// overwritten, and a --runs folder that does not exist gave an export of 0
// runs. An export now needs a new or empty folder, or an earlier export.
import { assert, assertEquals, assertRejects } from "@std/assert";
import { exportDashboard } from "./mod.ts";
import { HttpError } from "./generation.ts";

Deno.test("an export never overwrites a folder that is not an export's, and needs an existing --runs", async () => {
  const root = await Deno.makeTempDir(), tmp = await Deno.makeTempDir();
  try {
    // A user's folder: their index.html beside their notes; refused, kept.
    const user = `${tmp}/site`;
    await Deno.mkdir(user);
    await Deno.writeTextFile(`${user}/index.html`, "mine");
    await Deno.writeTextFile(`${user}/notes.txt`, "mine too");
    await assertRejects(
      () => exportDashboard(root, user),
      HttpError,
      `--export ${user} holds files that are not an export's (notes.txt)`,
    );
    // Their index.html alone: still theirs.
    await Deno.remove(`${user}/notes.txt`);
    await assertRejects(
      () => exportDashboard(root, user),
      HttpError,
      "its index.html was not written by an export",
    );
    assertEquals(await Deno.readTextFile(`${user}/index.html`), "mine");
    // A file, and a root that is not there.
    await Deno.writeTextFile(`${tmp}/file`, "x");
    await assertRejects(
      () => exportDashboard(root, `${tmp}/file`),
      HttpError,
      `--export ${tmp}/file is a file, not a folder`,
    );
    await assertRejects(
      () => exportDashboard(`${tmp}/nope`, `${tmp}/out`),
      HttpError,
      `--runs ${tmp}/nope does not exist`,
    );
    // A new folder, then the same export again: replaced.
    assertEquals(await exportDashboard(root, `${tmp}/out`), []);
    assertEquals(await exportDashboard(root, `${tmp}/out`), []);
    assertEquals(
      [...Deno.readDirSync(`${tmp}/out`)].map((e) => e.name).sort(),
      ["app.css", "app.js", "data.js", "index.html"],
    );
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
});

// The playground's unmasking route read a model's process.json whole before
// it checked the size: one linked to /dev/zero was read for ever (and a
// run's files are read only inside the run elsewhere).
Deno.test("the unmasking route reads process.json bounded and inside the run", async () => {
  const { fakeRun } = await import("./_test_util.ts");
  const { unmaskingRoute } = await import("./routes.ts");
  const { GenerationService } = await import("./generation.ts");
  const root = await Deno.makeTempDir();
  try {
    await fakeRun(`${root}/r`);
    const process = `${root}/r/seed-0/d3pm/process.json`;
    await Deno.remove(process);
    await Deno.symlink("/dev/zero", process);
    const ctx = {
      root,
      generation: new GenerationService(() => Promise.reject(new Error("x"))),
    };
    const q = new URLSearchParams({ run: "r", seed: "0", model: "d3pm" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await assertRejects(
      () =>
        Promise.race([
          unmaskingRoute(ctx, q),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error("still reading")), 5000);
          }),
        ]),
      HttpError,
      // The run's link out is refused before the route looks at it.
      "seed-0/d3pm/process.json is a link out of the run folder",
    );
    clearTimeout(timer);
    // Inside the run but over 1 MiB: named.
    await Deno.remove(process);
    await Deno.writeTextFile(process, " ".repeat(2 << 20));
    await assertRejects(
      () => unmaskingRoute(ctx, q),
      HttpError,
      "process description",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// `serve --export` read each run's report.md, samples.txt and metrics.jsonl
// whole into one data.js string: a 400 MB report.md took 2 GB of memory and
// failed with "Invalid string length", naming nothing, leaving a
// half-written export; a 370 MB metrics log took 3.4 GB and wrote a 400 MB
// data.js. Texts are now bounded, refused in one line naming the file; the
// log streams, thinned to fit and said so.
Deno.test("an export reads a run's texts bounded and streams its metrics log, thinning a long one per model and saying so", async () => {
  const { fakeRun } = await import("./_test_util.ts");
  const { within } = await import("../core/_within_test_util.ts");
  const root = await Deno.makeTempDir(), out = await Deno.makeTempDir();
  const exported = async () => {
    const js = await Deno.readTextFile(`${out}/data.js`);
    return JSON.parse(
      js.slice(js.indexOf("=") + 1).trim().replace(/;$/, ""),
    ).run.r as { metrics: string[]; files: Record<string, string> };
  };
  try {
    await fakeRun(`${root}/r`, { results: true });
    // A FIFO for samples.txt: not read (not a regular file), not waited on.
    await new Deno.Command("mkfifo", { args: [`${root}/r/samples.txt`] })
      .output();
    const log: string[] = [];
    const got = await within(
      10_000,
      () => exportDashboard(root, out, { log: (l) => log.push(l) }),
      `${root}/r/samples.txt`,
    );
    if (got === "timeout") throw new Error("samples.txt FIFO: hung");
    if ("error" in got) throw got.error;
    assertEquals((await exported()).metrics.length, 2);
    assertEquals(Object.keys((await exported()).files), ["report.md"]);
    await Deno.remove(`${root}/r/samples.txt`);

    // A long log: two models interleaved, validations among them.
    const lines: string[] = [];
    for (let step = 1; step <= 300; step++) {
      for (const model of ["ar", "d3pm"]) {
        lines.push(JSON.stringify({ model, seed: 0, step, loss: 3 }));
        if (step % 50 === 0) {
          lines.push(JSON.stringify({ model, seed: 0, step, valid: 2 }));
        }
      }
    }
    const text = lines.join("\n") + "\n";
    await Deno.writeTextFile(`${root}/r/metrics.jsonl`, text);
    // It fits: every line, as it is.
    await exportDashboard(root, out);
    assertEquals((await exported()).metrics, lines);
    // Over the limit: every validation, and 1 in k training records of
    // each model from its first (k = size / limit, rounded up).
    log.length = 0;
    const limit = 8 << 10;
    await exportDashboard(root, out, {
      log: (l) => log.push(l),
      maxMetricsBytes: limit,
    });
    const k = Math.ceil(text.length / limit);
    const kept = (await exported()).metrics.map((l) => JSON.parse(l));
    for (const model of ["ar", "d3pm"]) {
      const mine = kept.filter((r) => r.model === model);
      assertEquals(
        mine.filter((r) => "valid" in r).map((r) => r.step),
        [50, 100, 150, 200, 250, 300],
      );
      assertEquals(
        mine.filter((r) => "loss" in r).map((r) => r.step),
        Array.from({ length: Math.ceil(300 / k) }, (_, i) => 1 + i * k),
        model,
      );
    }
    assert(
      log[0].includes(
        `over the 8.0 KiB an export holds: 1 in ${k} of its 600 training-loss records`,
      ),
      log[0],
    );

    // A report.md over 16 MiB: refused in one line naming it (sparse: no disk).
    const report = `${root}/r/report.md`;
    await (await Deno.open(report, { write: true })).truncate(20 << 20);
    const e = await assertRejects(() => exportDashboard(root, out), HttpError);
    assert(
      e.message.startsWith(
        `Cannot read ${await Deno.realPath(
          report,
        )}: it is larger than the 16.0 MiB`,
      ) &&
        e.message.includes("--only") && !e.message.includes("\n"),
      e.message,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});

// The check that an --export folder holds an earlier export read its
// index.html whole: a user's large index.html there was loaded into memory
// only to find it lacks the export's marker.
Deno.test("an --export folder's index.html is read bounded: a large one is not an export's and is not read whole", async () => {
  const root = await Deno.makeTempDir(), out = await Deno.makeTempDir();
  try {
    await (await Deno.create(`${out}/index.html`)).truncate(256 << 20);
    const rss = Deno.memoryUsage().rss;
    await assertRejects(
      () => exportDashboard(root, out),
      HttpError,
      "its index.html was not written by an export",
    );
    assert(Deno.memoryUsage().rss - rss < 96 << 20, "read whole");
    assertEquals((await Deno.stat(`${out}/index.html`)).size, 256 << 20);
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(out, { recursive: true });
  }
});

// The run list and an export worked out "links out of the run, or
// unchecked" each for itself. Plants: notServed() without its `unchecked`
// (the run too deep to check listed and exported); export.ts or routes.ts
// filtering by `linksOut` alone (the same run exported, or summarised).
Deno.test("notServed() is the one reason the run list and an export give for a run with a link out, and for one whose links could not all be checked", async () => {
  const { fakeRun } = await import("./_test_util.ts");
  const {
    findRuns,
    GenerationService,
    listRunsRoute,
    MAX_WALK_DEPTH,
    notServed,
  } = await import("./mod.ts");
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    const root = `${base}/runs`;
    await Deno.writeTextFile(`${base}/secret.txt`, "SECRET");
    await fakeRun(`${root}/ok`);
    await fakeRun(`${root}/linked`);
    await Deno.remove(`${root}/linked/seed-0/ar/process.json`);
    await Deno.symlink(
      `${base}/secret.txt`,
      `${root}/linked/seed-0/ar/process.json`,
    );
    await fakeRun(`${root}/deep`);
    const deeper = Array.from({ length: MAX_WALK_DEPTH + 1 }, (_, i) => `n${i}`)
      .join("/");
    await Deno.mkdir(`${root}/deep/${deeper}`, { recursive: true });
    const reasons = {
      linked:
        'Run "linked" is not served: seed-0/ar/process.json is a link out of the run folder (the dashboard reads only what lies inside a run); replace the link with the file',
      deep:
        `Run "deep" is not served: it nests folders more than ${MAX_WALK_DEPTH} deep (${deeper}), deeper than the dashboard checks for links out of a run`,
    };
    const found = await findRuns(root);
    assertEquals(
      found.map((r) => [r.id, notServed(r)]),
      [["deep", reasons.deep], ["linked", reasons.linked], ["ok", undefined]],
    );
    const ctx = {
      root,
      generation: new GenerationService(() => Promise.reject(new Error("x"))),
    };
    const { runs } = await (await listRunsRoute(ctx)).json() as {
      runs: { id: string; status: string; reason?: string }[];
    };
    assertEquals(
      runs.map((r) => [r.id, r.status === "corrupt" ? r.reason : "listed"]),
      [["deep", reasons.deep], ["linked", reasons.linked], ["ok", "listed"]],
    );
    const log: string[] = [];
    const out = `${base}/export`;
    assertEquals(
      await exportDashboard(root, out, { log: (l) => log.push(l) }),
      ["ok"],
    );
    assertEquals(log.filter((l) => l.startsWith("skipped ")), [
      `skipped ${reasons.deep}`,
      `skipped ${reasons.linked}`,
    ]);
    assert(!(await Deno.readTextFile(`${out}/data.js`)).includes("SECRET"));
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

// `serve --export` of a run whose results.json came from another run wrote
// its report.md into data.js beside the reason the run is corrupt; the page
// lists such a run with its reason and opens nothing of it.
Deno.test("an export ships no report, samples or metrics of a run the run folder's checks call corrupt, and says so", async () => {
  const { fakeRun } = await import("./_test_util.ts");
  const base = await Deno.makeTempDir();
  try {
    const root = `${base}/runs`, out = `${base}/export`;
    await fakeRun(`${root}/good`, { results: true });
    await fakeRun(`${root}/copied`, { results: true });
    await Deno.writeTextFile(`${root}/copied/samples.txt`, "SAMPLES");
    // A torn results.json beside a readable config: corrupt, its state known.
    await fakeRun(`${root}/half`, { results: true });
    await Deno.writeTextFile(`${root}/half/results.json`, '{"config": {');
    const config = JSON.parse(
      await Deno.readTextFile(`${root}/copied/config.json`),
    );
    await Deno.writeTextFile(
      `${root}/copied/results.json`,
      JSON.stringify({ config: { ...config, lr: config.lr * 2 }, results: [] }),
    );
    const log: string[] = [];
    assertEquals(
      await exportDashboard(root, out, { log: (l) => log.push(l) }),
      ["copied", "good", "half"],
    );
    const js = await Deno.readTextFile(`${out}/data.js`);
    const run = JSON.parse(js.slice(js.indexOf("=") + 1).trim().slice(0, -1))
      .run as Record<string, {
        info: { status: string; reason: string; [key: string]: unknown };
        metrics: string[];
        files: Record<string, string>;
      }>;
    assertEquals(run.copied.info.status, "corrupt");
    assert(
      run.copied.info.reason.startsWith(
        "copied/results.json was measured with --lr ",
      ),
      run.copied.info.reason,
    );
    assertEquals([run.copied.files, run.copied.metrics], [{}, []]);
    // Its list row only: no full configuration, results, models or labels.
    assertEquals(run.half.info.status, "corrupt");
    assertEquals([run.half.files, run.half.metrics], [{}, []]);
    for (const id of ["copied", "half"]) {
      const info = run[id].info;
      assertEquals(
        [info.configFull, info.results, info.models, info.labels],
        [undefined, undefined, [], {}],
        id,
      );
    }
    assert(!js.includes("SAMPLES"));
    assertEquals(Object.keys(run.good.files), ["report.md"]);
    assertEquals(run.good.metrics.length, 2);
    assertEquals(
      log.filter((l) => l.startsWith("exported copied")),
      [`exported copied as corrupt, without its files (${run.copied.info.reason})`],
    );
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("an export whose run's metrics.jsonl is removed or replaced just after it was opened leaves no handle open and says the log's records are not in it", async () => {
  const { fakeRun } = await import("./_test_util.ts");
  const { openHooks } = await import("./_open_hooks.ts");
  for (const how of ["removed", "replaced"] as const) {
    const base = await Deno.realPath(await Deno.makeTempDir());
    try {
      await fakeRun(`${base}/runs/good`, { results: true });
      const log = `${base}/runs/good/metrics.jsonl`;
      await Deno.writeTextFile(log, '{"step":1,"loss":1}\n');
      openHooks.afterOpen = async (p) => {
        if (!p.endsWith("metrics.jsonl")) return;
        if (how === "removed") return await Deno.remove(p);
        await Deno.writeTextFile(`${p}.new`, '{"step":9,"loss":9}\n');
        await Deno.rename(`${p}.new`, p);
      };
      const lines: string[] = [];
      await exportDashboard(`${base}/runs`, `${base}/out`, {
        log: (l) => lines.push(l),
      });
      // No descriptor of this process left on the log (Deno's resource
      // sanitizer let the handle left open here pass).
      const onLog = [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
        try {
          return Deno.readLinkSync(`/proc/self/fd/${e.name}`).includes(log);
        } catch {
          return false;
        }
      });
      assertEquals(onLog.length, 0, `${how}: a handle left open on the log`);
      const line = lines.find((l) => l.startsWith("exported good"));
      assertEquals(
        line,
        "exported good (0 metrics records; its metrics.jsonl (20 B when opened) was removed or replaced before it was read: none of its records are in the export)",
        how,
      );
    } finally {
      delete openHooks.afterOpen;
      await Deno.remove(base, { recursive: true });
    }
  }
});
