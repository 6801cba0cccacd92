// The run folder's rules, in process: the lock names its process (pid,
// start time, command), --force only moves a stopped run folder, a path is
// normalised, and every file a reader takes from the folder is checked.
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { ConfigError, lockFile, resolveConfig, RunFolder } from "./mod.ts";
import { hooks } from "./_run_folder_hooks.ts";
import { MAY_MOUNT, withTmpfs } from "../core/_mount_test_util.ts";
import { within } from "../core/_within_test_util.ts";

// The ConfigError `read` refuses the FIFO at `fifo` with, within 5 s: a
// reader that opened it would hang the test, not fail it (it is released).
async function refusedWithin(
  read: () => Promise<unknown>,
  fifo: string,
): Promise<ConfigError> {
  const got = await within(5000, read, fifo);
  if (got === "timeout") throw new Error(`${fifo}: still reading after 5 s`);
  if (!("error" in got)) throw new Error(`${fifo}: read, not refused`);
  if (!(got.error instanceof ConfigError)) throw got.error;
  assert(!got.error.message.includes("\n"), got.error.message);
  return got.error;
}

const config = (out: string, extra: Record<string, unknown> = {}) =>
  resolveConfig({ preset: "micro", out, ...extra });

async function tempRun(): Promise<{ dir: string; out: string }> {
  const dir = await Deno.makeTempDir();
  return { dir, out: `${dir}/run` };
}

/** A live process that is not a run: `sleep`, started now. */
function sleeper(): Deno.ChildProcess {
  return new Deno.Command("sleep", { args: ["30"], stdout: "null" }).spawn();
}

Deno.test("the lock records this process's pid, start time and command", async () => {
  const { dir, out } = await tempRun();
  const release = await new RunFolder(out).start(config(out));
  const lock = JSON.parse(await Deno.readTextFile(`${out}/.lock`));
  assertEquals(lock.pid, Deno.pid);
  const stat = await Deno.readTextFile("/proc/self/stat");
  assertEquals(
    lock.start,
    stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19],
  );
  // The main module's path, decoded, not its file: URL.
  const main = decodeURIComponent(new URL(Deno.mainModule).pathname);
  assert(lock.command.startsWith(`deno ${main}`), lock.command);
  release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a lock naming this very process by a bare pid (no start time) is alive: refused, not taken over", async () => {
  const { dir, out } = await tempRun();
  try {
    await Deno.mkdir(out);
    await Deno.writeTextFile(`${out}/.lock`, `${Deno.pid}\n`);
    const refused = await assertRejects(
      () => new RunFolder(out).acquire(config(out)),
      ConfigError,
      `${out} is in use by another run (pid ${Deno.pid})`,
    );
    assertEquals((refused as { exitCode?: number }).exitCode, 75);
    assertEquals(await Deno.readTextFile(`${out}/.lock`), `${Deno.pid}\n`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lock naming a gone pid is stale in this pid namespace (or none recorded), and held when it names another namespace (a container sharing the folder: its pid names no process here)", async () => {
  const { dir, out } = await tempRun();
  try {
    const folder = new RunFolder(out);
    await Deno.mkdir(out);
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    // The lock this process writes records its namespace.
    const release = await folder.lock();
    const { ns } = JSON.parse(await Deno.readTextFile(folder.lockPath));
    release();
    assert(typeof ns === "string" && ns.startsWith("pid:["), `ns: ${ns}`);
    for (const holder of [{}, { ns }]) {
      await Deno.writeTextFile(
        folder.lockPath,
        JSON.stringify({ pid: gone.pid, start: "1", ...holder }),
      );
      assertEquals(await folder.writer(), undefined, JSON.stringify(holder));
    }
    await Deno.writeTextFile(
      folder.lockPath,
      JSON.stringify({ pid: gone.pid, start: "1", ns: "pid:[1]" }),
    );
    assertEquals(await folder.writer(), gone.pid);
    await assertRejects(
      () => folder.lock(),
      ConfigError,
      "in use by another run",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lock naming a gone pid of this namespace is stale on this host, and held — refused, naming the host and the way out — when it names another host name (a Slurm node sharing the folder: every host's first pid namespace has the same inode)", async () => {
  const { dir, out } = await tempRun();
  try {
    const folder = new RunFolder(out);
    await Deno.mkdir(out);
    const gone = new Deno.Command("true").spawn();
    await gone.status;
    // The lock this process writes records its namespace and host.
    const release = await folder.lock();
    const { ns, host, hostname } = JSON.parse(
      await Deno.readTextFile(folder.lockPath),
    );
    release();
    assertEquals(
      host,
      Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim(),
    );
    assertEquals(hostname, Deno.hostname());
    const lock = (h: string, name?: string) =>
      Deno.writeTextFile(
        folder.lockPath,
        JSON.stringify({
          pid: gone.pid,
          start: "1",
          ns,
          host: h,
          ...(name === undefined ? {} : { hostname: name }),
        }),
      );
    await lock(host, hostname);
    assertEquals(await folder.writer(), undefined);
    const other = crypto.randomUUID();
    await lock(other, "node9");
    assertEquals(await folder.writer(), gone.pid);
    assertEquals(await folder.liveHolder().then((h) => h?.hostname), "node9");
    const refused = await assertRejects(() => folder.lock(), ConfigError);
    assertEquals(
      refused.message,
      `${out} is in use by a run on host node9 (boot ${other}), not this one (${hostname}) (pid ${gone.pid}): whether it still runs cannot be told from here; wait for it, or use --out DIR (if that host is gone or was rebooted since, and no run writes here, delete ${folder.lockPath})`,
    );
    assertEquals(
      JSON.parse(await Deno.readTextFile(folder.lockPath)).host,
      other,
    );
    // Another boot and no host name: this host rebooted, or another host —
    // refused, saying it cannot tell which (not "not this one").
    await lock(other);
    const unplaced = await assertRejects(() => folder.lock(), ConfigError);
    assertEquals(
      unplaced.message,
      `${out} is in use by a run on host of unknown name (boot ${other}), not this boot (${host}) — this host before a reboot or another host, which cannot be told with its name unknown (pid ${gone.pid}): whether it still runs cannot be told from here; wait for it, or use --out DIR (if this host was rebooted since, or that host is gone, and no run writes here, delete ${folder.lockPath})`,
    );
    // lockFile (a sweep's sweep.json) waits for it too, then says so.
    const path = `${dir}/x.lock`;
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        pid: gone.pid,
        start: "1",
        ns,
        host: other,
        hostname: "node9",
      }),
    );
    const err = await assertRejects(() => lockFile(path, 50), ConfigError);
    assertEquals(
      err.message,
      `${path} has been held by another process on host node9 (boot ${other}), not this one (${hostname}) (pid ${gone.pid}) for over 0.05 s; wait for it (if no such process is alive, or that host is gone or was rebooted since, delete ${path})`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// Plant: parseLock dropping `since` (the twin's live lock taken over).
Deno.test("a lock of this host's name and another boot (this machine before a reboot) is taken over by a run and by lockFile, even where its pid and start name a live process now — but not one written since this host booted (another machine of this name)", async () => {
  if (Deno.build.os !== "linux") return;
  const { dir, out } = await tempRun();
  const child = sleeper();
  try {
    const folder = new RunFolder(out);
    await Deno.mkdir(out);
    const stat = await Deno.readTextFile(`/proc/${child.pid}/stat`);
    const text = JSON.stringify({
      pid: child.pid,
      start: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19],
      command: "deno run examples/experiment.ts",
      host: crypto.randomUUID(),
      hostname: Deno.hostname(),
    });
    // The same pid and start on this boot: a live run, refused.
    const { host: _, ...thisBoot } = JSON.parse(text);
    await Deno.writeTextFile(folder.lockPath, JSON.stringify(thisBoot));
    assertEquals(await folder.writer(), child.pid);
    await assertRejects(
      () => folder.lock(),
      ConfigError,
      "in use by another run",
    );
    // Written by a machine of this name since this host booted (a twin VM:
    // every one here is named vm): alive, refused naming it.
    await Deno.writeTextFile(
      folder.lockPath,
      JSON.stringify({ ...JSON.parse(text), since: Date.now() }),
    );
    assertEquals((await folder.liveHolder())?.pid, child.pid);
    await assertRejects(
      () => folder.lock(),
      ConfigError,
      "another machine of this host's name",
    );
    await Deno.writeTextFile(folder.lockPath, text);
    assertEquals(await folder.writer(), undefined);
    assertEquals(await folder.liveHolder(), undefined);
    const release = await folder.lock();
    assertEquals(
      JSON.parse(await Deno.readTextFile(folder.lockPath)).pid,
      Deno.pid,
    );
    release();
    const path = `${dir}/x.lock`;
    await Deno.writeTextFile(path, text);
    (await lockFile(path, 50))();
  } finally {
    child.kill();
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lock naming a live process of another start time, or a bare pid of a process that is not a run, is stale", async () => {
  const { dir, out } = await tempRun();
  const child = sleeper();
  try {
    const folder = new RunFolder(out);
    await Deno.mkdir(out);
    // The pid is alive, but was reused: the lock's process started earlier.
    await Deno.writeTextFile(
      folder.lockPath,
      JSON.stringify({ pid: child.pid, start: "1", command: "deno run x" }),
    );
    assertEquals(await folder.writer(), undefined);
    const release = await folder.lock();
    release();
    // A lock of an older version: a bare pid, here of `sleep`, not a run.
    await Deno.writeTextFile(folder.lockPath, `${child.pid}\n`);
    assertEquals(await folder.writer(), undefined);
    (await folder.lock())();
    // The very process recorded (same start time) still holds it: refused,
    // with how to clear a wrong lock.
    const stat = await Deno.readTextFile(`/proc/${child.pid}/stat`);
    await Deno.writeTextFile(
      folder.lockPath,
      JSON.stringify({
        pid: child.pid,
        start: stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19],
      }),
    );
    assertEquals(await folder.writer(), child.pid);
    await assertRejects(
      () => folder.lock(),
      ConfigError,
      `in use by another run (pid ${child.pid}); wait for it, or use --out DIR (if no such run is alive, delete ${out}/.lock)`,
    );
  } finally {
    child.kill();
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--force never moves a folder whose lock is live, nor a folder that holds no run", async () => {
  const { dir, out } = await tempRun();
  const first = await new RunFolder(out).start(config(out));
  // A second process would hold the lock... so does this one: refused.
  await assertRejects(
    () => new RunFolder(out).acquire(config(out, { force: true })),
    ConfigError,
    "in use by another run",
  );
  assertEquals((await new RunFolder(out).savedConfig())?.out, out);
  first();
  // Not a run: files but no config.json. Never touched, with or without --force.
  const other = `${dir}/photos`;
  await Deno.mkdir(other);
  await Deno.writeTextFile(`${other}/a.jpg`, "x");
  for (const force of [false, true]) {
    await assertRejects(
      () => new RunFolder(other).acquire(config(other, { force })),
      ConfigError,
      "holds files but no run (no config.json)",
    );
  }
  assertEquals([...Deno.readDirSync(other)].map((e) => e.name), ["a.jpg"]);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
    "photos",
    "run",
  ]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--force moves a stopped run aside under its own lock, also through a trailing slash", async () => {
  const { dir, out } = await tempRun();
  (await new RunFolder(out).start(config(out, { steps: 5, warmup: 1 })))();
  await Deno.writeTextFile(`${out}/metrics.jsonl`, '{"step":1}\n');
  const lock = await new RunFolder(`${out}//`).acquire(
    config(out, { force: true }),
  );
  // Until begin() nothing moved; the lock already keeps others out.
  assertEquals((await new RunFolder(out).savedConfig())?.steps, 5);
  await assertRejects(() => new RunFolder(out).lock(), ConfigError, "in use");
  await lock.begin();
  lock.release();
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  assertEquals(names.length, 2);
  const aside = `${dir}/${names.find((n) => n.startsWith("run.replaced-"))}`;
  assertEquals(
    JSON.parse(await Deno.readTextFile(`${aside}/config.json`)).steps,
    5,
  );
  assertEquals(
    await Deno.readTextFile(`${aside}/metrics.jsonl`),
    '{"step":1}\n',
  );
  assertEquals((await new RunFolder(out).savedConfig())?.steps, 800);
  assertEquals(await new RunFolder(out).writer(), undefined);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--force moves the whole run aside though entries vanish meanwhile, never another process's lock attempt; a resume leaves those attempts", async () => {
  const { dir, out } = await tempRun();
  (await new RunFolder(out).start(config(out, { steps: 5, warmup: 1 })))();
  await Deno.writeTextFile(`${out}/metrics.jsonl`, '{"step":1}\n');
  await Deno.writeTextFile(`${out}/samples.txt`, "x");
  // Another process's lock() attempt, created and removed by it: listed by
  // --force, then gone before its rename (a raw ENOENT stopped the move
  // halfway, the run split between two folders), or moved aside (that
  // process's lock then failed with "the folder does not exist").
  const attempt = `${out}/.lock.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(attempt, "{}");
  const listed: string[] = [];
  hooks.beforeMoveAside = (_, names) => {
    listed.push(...names);
    Deno.removeSync(`${out}/samples.txt`); // gone meanwhile too
  };
  try {
    const lock = await new RunFolder(out).acquire(config(out, { force: true }));
    await lock.begin();
    lock.release();
  } finally {
    delete hooks.beforeMoveAside;
  }
  const names = (d: string) =>
    [...Deno.readDirSync(d)].map((e) => e.name).sort();
  assert(!listed.some((n) => n.startsWith(".lock")), listed.join());
  const aside = `${dir}/${
    names(dir).find((n) => n.startsWith("run.replaced-"))
  }`;
  assertEquals(names(aside), ["config.json", "metrics.jsonl"]);
  assertEquals(names(out), [attempt.slice(out.length + 1), "config.json"]);
  // On --resume, stale temporary files go, another's lock attempt stays.
  const stale = `${out}/metrics.jsonl.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(stale, "half");
  // ...but one whose process is gone (killed mid-attempt) is removed.
  const dead = `${out}/.lock.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(dead, '{"pid": 4194303}');
  (await new RunFolder(out).start(config(out, { resume: true })))();
  assertEquals(names(out), [attempt.slice(out.length + 1), "config.json"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a run is inside a run folder by --out's real path: --out . resumes and --force its own run, a link into a run is refused", async () => {
  const { dir, out } = await tempRun();
  const cwd = Deno.cwd();
  try {
    await Deno.mkdir(out);
    Deno.chdir(out);
    (await new RunFolder(".").start(config(".")))(); // a run with --out .
    // parentOf(".") is "." itself: it was refused as "inside the run folder".
    for (const o of [".", "./", "sub/..", `../run`]) {
      await new RunFolder(o).check(config(o, { resume: true }));
    }
    const lock = await new RunFolder(".").acquire(config(".", { force: true }));
    await lock.begin();
    lock.release();
  } finally {
    Deno.chdir(cwd);
  }
  // Moved beside it, not into it (`..replaced-…` inside `.`).
  const aside = [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((n) => n.startsWith("run.replaced-"));
  assertEquals(aside.length, 1);
  assertEquals(
    [...Deno.readDirSync(`${dir}/${aside[0]}`)].map((e) => e.name),
    ["config.json"],
  );
  // A link to a folder inside a run: its parent is the link's folder, not
  // the run's, and a --force of that run moved this one aside.
  await Deno.mkdir(`${out}/sub`);
  await Deno.symlink(`${out}/sub`, `${dir}/link`);
  await Deno.symlink(`${out}`, `${dir}/run-link`);
  for (const o of [`${dir}/link`, `${dir}/link/`, `${dir}/run-link/sub/x`]) {
    await assertRejects(
      () => new RunFolder(o).acquire(config(o)),
      ConfigError,
      `--out ${o.replace(/\/$/, "")} is inside the run folder ${out}`,
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a resume where a model's folder is a link to nothing, or to a file, is refused by name before anything runs", async () => {
  const { dir, out } = await tempRun();
  (await new RunFolder(out).start(config(out)))();
  const resume = config(out, { resume: true });
  // Deno.stat read a link to nothing as absent: the run failed at that
  // model's turn with "File exists (os error 17): mkdir …/seed-1/ar".
  await Deno.symlink(`${dir}/gone`, `${out}/seed-0`);
  await assertRejects(
    () => new RunFolder(out).acquire(resume),
    ConfigError,
    `${out}/seed-0 is a symbolic link to ${dir}/gone, which does not exist, where the run keeps its models`,
  );
  await Deno.writeTextFile(`${dir}/file`, "x");
  await Deno.remove(`${out}/seed-0`);
  await Deno.mkdir(`${out}/seed-0`);
  await Deno.symlink(`${dir}/file`, `${out}/seed-0/ar`);
  await assertRejects(
    () => new RunFolder(out).acquire(resume),
    ConfigError,
    `${out}/seed-0/ar is a symbolic link to a file, where the run keeps its models`,
  );
  // A link to a folder is a folder.
  await Deno.remove(`${out}/seed-0/ar`);
  await Deno.mkdir(`${dir}/models`);
  await Deno.symlink(`${dir}/models`, `${out}/seed-0/ar`);
  (await new RunFolder(out).acquire(resume)).release();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("verifyWeights takes only a missing process.json as no record: a torn, FIFO or non-object one is refused naming it", async () => {
  const { dir, out } = await tempRun();
  const folder = new RunFolder(out);
  await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
  await Deno.writeTextFile(folder.weightsPath(0, "ar"), "weights");
  await folder.writeProcess(0, "ar", { kind: "autoregressive" });
  await folder.verifyWeights(0, "ar");
  const path = folder.processPath(0, "ar");
  const whole = await Deno.readTextFile(path);
  await Deno.writeTextFile(folder.weightsPath(0, "ar"), "other weights");
  // A torn one passed (any read or parse error read as "no record"), and
  // the weights beside it were taken unchecked.
  await Deno.writeTextFile(path, whole.slice(0, -3));
  const torn = await assertRejects(
    () => folder.verifyWeights(0, "ar"),
    ConfigError,
    `${path} is not valid JSON (expected a process description)`,
  );
  assert(torn.message.includes("restore it"), torn.message);
  assert(!torn.message.includes("\n"));
  await Deno.writeTextFile(path, "null");
  await assertRejects(
    () => folder.verifyWeights(0, "ar"),
    ConfigError,
    `${path} is not a process description (expected a JSON object)`,
  );
  await Deno.remove(path);
  await new Deno.Command("mkfifo", { args: [path] }).output();
  assertEquals(
    (await refusedWithin(() => folder.verifyWeights(0, "ar"), path)).message,
    `Cannot read ${path}: it is a FIFO (expected a process description, a regular file); the weights beside it cannot be checked against it: restore it, or --resume the run to write it again`,
  );
  await Deno.remove(path);
  await folder.verifyWeights(0, "ar"); // none: no record, nothing to check
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a stale lock's takeover never removes a live lock another process took meanwhile", async () => {
  const { dir, out } = await tempRun();
  await Deno.mkdir(out);
  await Deno.writeTextFile(`${out}/.lock`, '{"pid": 4194303}'); // gone
  // Another process takes the stale lock over between this one's reading
  // it and removing it: its fresh lock (a live process: `sleep`) was removed.
  const live = sleeper();
  const stat = await Deno.readTextFile(`/proc/${live.pid}/stat`);
  const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  const fresh = JSON.stringify({ pid: live.pid, start, command: "deno other" });
  hooks.beforeTakeover = (path) => {
    delete hooks.beforeTakeover;
    Deno.removeSync(path);
    Deno.writeTextFileSync(path, fresh);
  };
  try {
    await assertRejects(
      () => new RunFolder(out).lock(),
      ConfigError,
      `is in use by another run (pid ${live.pid}, deno other)`,
    );
  } finally {
    delete hooks.beforeTakeover;
    live.kill();
    await live.status;
  }
  assertEquals(await Deno.readTextFile(`${out}/.lock`), fresh);
  assertEquals([...Deno.readDirSync(out)].map((e) => e.name), [".lock"]);
  await Deno.remove(dir, { recursive: true });
});

// lock()'s retry, raced deterministically (hooks.beforeLockAttempt: the
// step between a stale lock's takeover and the next attempt to create it).
// Plants (each fails this test): the liveness check made on the first
// attempt only (the other process's live lock taken over on the retry: it
// is removed, and the line says "keeps taking it"); the retry loop unbounded
// (attempt 2 reached: the hook throws).
Deno.test("lock() retried after a takeover: another process's lock taken meanwhile refuses this one (exit 75) and stays; a lock that keeps coming back stale is refused after one retry", async () => {
  const { dir, out } = await tempRun();
  await Deno.mkdir(out);
  const lockPath = `${out}/.lock`;
  const stale = '{"pid": 4194303}'; // gone
  const live = sleeper();
  const stat = await Deno.readTextFile(`/proc/${live.pid}/stat`);
  const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  const fresh = JSON.stringify({ pid: live.pid, start, command: "deno other" });
  const attempts: number[] = [];
  try {
    // Another process takes the path between this one's takeover of the
    // stale lock and its retry.
    await Deno.writeTextFile(lockPath, stale);
    hooks.beforeLockAttempt = (path, attempt) => {
      attempts.push(attempt);
      if (attempt === 1) Deno.writeTextFileSync(path, fresh);
    };
    const e = await assertRejects(
      () => new RunFolder(out).lock(),
      ConfigError,
      `${out} is in use by another run (pid ${live.pid}, deno other)`,
    );
    assertEquals((e as ConfigError & { exitCode?: number }).exitCode, 75);
    assertEquals(attempts, [0, 1]);
    assertEquals(await Deno.readTextFile(lockPath), fresh);
    assertEquals([...Deno.readDirSync(out)].map((e) => e.name), [".lock"]);
    // Each attempt finds a stale lock again (processes dying one after
    // another): one retry, then a refusal, never a loop.
    attempts.length = 0;
    await Deno.writeTextFile(lockPath, stale);
    hooks.beforeLockAttempt = (path, attempt) => {
      attempts.push(attempt);
      if (attempt > 1) throw new Error(`lock attempt ${attempt}: unbounded`);
      if (attempt === 1) Deno.writeTextFileSync(path, stale);
    };
    await assertRejects(
      () => new RunFolder(out).lock(),
      ConfigError,
      `Cannot lock ${out}: another run keeps taking it`,
    );
    assertEquals(attempts, [0, 1]);
    assertEquals([...Deno.readDirSync(out)], []); // both stale ones removed
    // The retry taken by no one: the lock is this process's.
    attempts.length = 0;
    await Deno.writeTextFile(lockPath, stale);
    hooks.beforeLockAttempt = (_, attempt) => void attempts.push(attempt);
    const release = await new RunFolder(out).lock();
    assertEquals(attempts, [0, 1]);
    assertEquals(JSON.parse(await Deno.readTextFile(lockPath)).pid, Deno.pid);
    release();
    assertEquals([...Deno.readDirSync(out)], []);
  } finally {
    delete hooks.beforeLockAttempt;
    live.kill();
    await live.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the check is made again under the lock: a run started meanwhile is not overwritten", async () => {
  const { dir, out } = await tempRun();
  const folder = new RunFolder(out);
  await folder.check(config(out)); // both see an empty folder...
  (await folder.start(config(out, { steps: 5, warmup: 1 })))(); // ...one starts
  await assertRejects(
    () => folder.start(config(out)), // the other is refused under the lock
    ConfigError,
    "already holds a run",
  );
  assertEquals((await folder.savedConfig())?.steps, 5);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a refused or abandoned lock leaves no folder behind; an empty path is refused", async () => {
  const { dir, out } = await tempRun();
  const lock = await new RunFolder(out).acquire(config(out));
  lock.release(); // preparation failed: nothing was written
  assertEquals([...Deno.readDirSync(dir)], []);
  assertThrows(() => new RunFolder(""), ConfigError, "needs a path");
  assertEquals(new RunFolder("runs/a///").dir, "runs/a");
  assertEquals(new RunFolder("/").dir, "/");
  assertEquals(new RunFolder("a/").dir, "a");
  assertEquals(new RunFolder("//").dir, "/");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("config.json that is not a run's configuration is refused naming the file and what is wrong", async () => {
  const { dir, out } = await tempRun();
  await Deno.mkdir(out);
  const folder = new RunFolder(out);
  const cases: [string, string][] = [
    ["null", "expected a JSON object of options, got null"],
    ["[]", "expected a JSON object of options, got an array"],
    ['"x"', "expected a JSON object of options, got string"],
    ["{}", "it lacks --preset"],
    ["{oops", "is not valid JSON"],
    [
      JSON.stringify({ ...config(out), steps: "many" }),
      'option --steps must be a positive integer, got "many"',
    ],
    [
      JSON.stringify({ ...config(out), bogus: 1 }),
      "an option this version does not know (bogus)",
    ],
  ];
  for (const [text, why] of cases) {
    await Deno.writeTextFile(folder.configPath, text);
    await assertRejects(() => folder.savedConfig(), ConfigError, why, text);
    await assertRejects(
      () => folder.savedConfig(),
      ConfigError,
      `${out}/config.json`,
    );
  }
  await Deno.remove(folder.configPath);
  await Deno.symlink("/dev/zero", folder.configPath);
  await assertRejects(
    () => folder.savedConfig(),
    ConfigError,
    "is a character device",
  );
  await Deno.remove(folder.configPath);
  new Deno.Command("mkfifo", { args: [folder.configPath] }).outputSync();
  const e = await refusedWithin(() => folder.savedConfig(), folder.configPath);
  assert(e.message.includes("is a FIFO"), e.message);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a .lock folder with files in it is the user's: never taken over nor removed", async () => {
  const { dir, out } = await tempRun();
  try {
    // A folder holding only a `.lock` folder with a file: not an empty folder.
    await Deno.mkdir(`${out}/.lock`, { recursive: true });
    await Deno.writeTextFile(`${out}/.lock/keep.txt`, "precious");
    await assertRejects(
      () => new RunFolder(out).start(config(out)),
      ConfigError,
      "holds files but no run",
    );
    // A run folder with such a `.lock`: refused, the folder kept.
    await Deno.writeTextFile(
      `${out}/config.json`,
      JSON.stringify(config(out), null, 2),
    );
    await assertRejects(
      () => new RunFolder(out).start(config(out, { resume: true })),
      ConfigError,
      `${out}/.lock is a folder with files in it, not a lock this tool wrote`,
    );
    assertEquals(await Deno.readTextFile(`${out}/.lock/keep.txt`), "precious");
    // A link named .lock is taken over: the link goes, its target stays.
    await Deno.remove(`${out}/.lock`, { recursive: true });
    await Deno.writeTextFile(`${dir}/target`, "mine");
    await Deno.symlink(`${dir}/target`, `${out}/.lock`);
    (await new RunFolder(out).lock())();
    assertEquals(await Deno.readTextFile(`${dir}/target`), "mine");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// `--out` as a link to nothing said "Cannot lock …: the folder does not
// exist" (it does, as a link), and a folder that cannot be made gave the
// system's "No such file or directory (os error 2): mkdir '/proc/x'"
// without naming --out.
Deno.test("an --out that cannot be made, or links to nothing, is named in one line", async () => {
  const { dir } = await tempRun();
  try {
    const link = `${dir}/link`;
    await Deno.symlink(`${dir}/nowhere`, link);
    await assertRejects(
      () => new RunFolder(link).start(config(link)),
      ConfigError,
      `--out ${link} is a symbolic link to ${dir}/nowhere, which does not exist`,
    );
    await assertRejects(
      () => new RunFolder("/proc/x").start(config("/proc/x")),
      ConfigError,
      "Cannot create --out /proc/x: No such file or directory; choose a folder you can write",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// The dashboard and `sweep status` read a results.json that readRun could
// not parse a second time, unbounded: one linked to /dev/zero hung
// `serve --export` (30 s, then killed).
Deno.test("inspectRun reads an unreadable results.json bounded: a device is named, not read", async () => {
  const { inspectRun } = await import("./mod.ts");
  const { dir, out } = await tempRun();
  try {
    await Deno.mkdir(out);
    await Deno.writeTextFile(
      `${out}/config.json`,
      JSON.stringify(config(out), null, 2),
    );
    await Deno.symlink("/dev/zero", `${out}/results.json`);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const o = await Promise.race([
      inspectRun(out),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("inspectRun still reading after 5 s")),
          5000,
        );
      }),
    ]);
    clearTimeout(timer);
    assertEquals(o.status, "corrupt");
    assert(o.reason?.includes("it is a character device"), o.reason);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// A results.json copied from another run (`cp run2/results.json run/`) was
// listed by the dashboard as the run's figures, under a configuration they
// were not measured with; only `report --merge` compared the two.
Deno.test("readRun refuses a results.json measured with another configuration, naming the option; inspectRun lists the run as corrupt; resumable options may differ", async () => {
  const { inspectRun, readRun } = await import("./mod.ts");
  const { dir, out } = await tempRun();
  try {
    await Deno.mkdir(out);
    const saved = config(out);
    await Deno.writeTextFile(`${out}/config.json`, JSON.stringify(saved));
    const results = (c: object) =>
      Deno.writeTextFile(
        `${out}/results.json`,
        JSON.stringify({ config: c, results: [] }),
      );
    await results({ ...saved, lr: saved.lr * 2, out: "/elsewhere" });
    const why = `${out}/results.json was measured with --lr ${
      saved.lr * 2
    } but its config.json gives ${saved.lr} (one was copied or edited by hand)`;
    await assertRejects(() => readRun(out), ConfigError, why);
    const o = await inspectRun(out);
    assertEquals(o.status, "corrupt");
    assert(o.reason?.startsWith(why), o.reason);
    // A --resume may change --log-every: the same run's results.
    await results({ ...saved, logEvery: saved.logEvery + 1 });
    assertEquals((await readRun(out)).status, "finished");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// `--force --lr 0.002` over a finished run, Ctrl-C during the judge's
// training: "interrupted: 2 checkpoint(s) in … continue with: … --lr 0.002
// --resume" — the earlier run's checkpoints, which that command is then
// refused to resume. Before this process writes, nothing is its to resume.
Deno.test("Ctrl-C's note counts checkpoints only once this process has begun writing", async () => {
  const { dir, out } = await tempRun();
  try {
    await Deno.mkdir(`${out}/seed-0/ar`, { recursive: true });
    await Deno.writeTextFile(
      `${out}/config.json`,
      JSON.stringify(config(out), null, 2),
    );
    await Deno.writeTextFile(`${out}/seed-0/ar/checkpoint.safetensors`, "x");
    const folder = new RunFolder(out);
    const forced = await folder.acquire(config(out, { force: true }));
    assertEquals(
      folder.interruptionNote("deno task experiment --out x"),
      `\ninterrupted during preparation: nothing was written to ${out}; run the same command again`,
    );
    forced.release();
    const resumed = await folder.acquire(config(out, { resume: true }));
    await resumed.begin();
    assertEquals(
      folder.interruptionNote("deno task experiment --out x"),
      `\ninterrupted: 1 checkpoint(s) in ${out} (seed-0/ar/checkpoint.safetensors); continue with: deno task experiment --out x --resume`,
    );
    resumed.release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sweep cell that cannot resume names the sweep's remedy, not --out or --force", async () => {
  const root = await Deno.makeTempDir();
  const cell = `${root}/sw/cells/seed-0`;
  await Deno.mkdir(cell, { recursive: true });
  await Deno.writeTextFile(`${root}/sw/sweep.json`, "{}\n");
  const folder = new RunFolder(cell);
  (await folder.start(config(cell)))();
  const err = await assertRejects(
    () => folder.check({ ...config(cell), resume: true, steps: 5 }),
    ConfigError,
  );
  assertEquals(
    err.message,
    `Cannot resume ${cell}: --steps is 5 but the run used 800 (this is cell seed-0 of the sweep ${root}/sw: move ${cell} aside and run the sweep again to start the cell afresh, or plan a new sweep with --dir DIR)`,
  );
  // A folder named cells with no sweep.json beside it is no sweep's.
  const alone = `${root}/other/cells/a`;
  await Deno.mkdir(alone, { recursive: true });
  const run = new RunFolder(alone);
  (await run.start(config(alone)))();
  await assertRejects(
    () => run.check({ ...config(alone), resume: true, steps: 5 }),
    ConfigError,
    "(start a new run with --out DIR, or --force to replace this one)",
  );
  await Deno.remove(root, { recursive: true });
});

Deno.test({
  name:
    "--force through a link to another filesystem moves the run beside the folder it names",
  ignore: Deno.build.os !== "linux" ||
    Deno.statSync("/dev/shm").dev ===
      Deno.statSync(Deno.env.get("TMPDIR") ?? "/tmp").dev,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const shm = await Deno.makeTempDir({ dir: "/dev/shm" });
    const out = `${shm}/run`;
    (await new RunFolder(out).start(config(out, { steps: 5, warmup: 1 })))();
    await Deno.symlink(out, `${dir}/link`);
    // Beside the link: the rename across filesystems failed with the raw
    // EXDEV and left an empty `link.replaced-…` folder.
    const lock = await new RunFolder(`${dir}/link`).acquire(
      config(`${dir}/link`, { force: true }),
    );
    await lock.begin();
    lock.release();
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["link"]);
    const aside = [...Deno.readDirSync(shm)].map((e) => e.name)
      .filter((n) => n.startsWith("run.replaced-"));
    assertEquals(aside.length, 1);
    assertEquals(
      (await new RunFolder(`${shm}/${aside[0]}`).savedConfig())?.steps,
      5,
    );
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(shm, { recursive: true });
  },
});

// A file that cannot be renamed (root only: a mount inside the run).
Deno.test({
  name:
    "--force that cannot move a file aside says so in one line and leaves the run whole, with no aside folder",
  ignore: !MAY_MOUNT,
  fn: async () => {
    const { dir, out } = await tempRun();
    (await new RunFolder(out).start(config(out, { steps: 5, warmup: 1 })))();
    await Deno.writeTextFile(`${out}/metrics.jsonl`, "{}\n");
    await Deno.mkdir(`${out}/seed-0`);
    await withTmpfs(`${out}/seed-0`, async () => {
      const before = [...Deno.readDirSync(out)].map((e) => e.name).sort();
      const e = await assertRejects(
        () => new RunFolder(out).start(config(out, { force: true })),
        ConfigError,
        `Cannot move the earlier run in ${out} aside to ${out}.replaced-`,
      );
      assert(e.message.includes(`the run is left whole in ${out}`), e.message);
      assert(!e.message.includes("\n"));
      assertEquals(
        [...Deno.readDirSync(out)].map((e) => e.name).sort(),
        before,
      );
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["run"]);
      assertEquals((await new RunFolder(out).savedConfig())?.steps, 5);
    }).finally(() => Deno.remove(dir, { recursive: true }));
  },
});

// A full disk (root only: it mounts a 64 KiB tmpfs and fills it).
Deno.test({
  name:
    "a lock on a full disk is refused in one line saying so, and leaves no empty .lock nor the folders it made",
  ignore: !MAY_MOUNT,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await withTmpfs(dir, async () => {
      await Deno.writeFile(`${dir}/fill`, new Uint8Array(256 << 10)).catch(
        () => {},
      );
      const out = `${dir}/a/run`;
      // It fell back to creating .lock itself, failed writing it and left
      // it empty: `a/run` stayed, and it said "copy it elsewhere to resume".
      const e = await assertRejects(
        () => new RunFolder(out).acquire(config(out)),
        ConfigError,
        `Cannot lock --out ${out}: No space left on device; free space there, or choose an --out on another disk`,
      );
      assert(!e.message.includes("\n"));
      assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["fill"]);
    }).finally(() => Deno.remove(dir, { recursive: true }));
  },
});

// A BPE run's config.json copied into a byte run's folder (no results.json
// yet) failed as "Cannot read RUN/tokenizer.json: No such file or
// directory", naming a file the run never had.
Deno.test("openTokenizer names config.json when it gives another tokenizer than data.json records the run built", async () => {
  const { openTokenizer } = await import("./mod.ts");
  const { dir, out } = await tempRun();
  try {
    await Deno.mkdir(out);
    const sha256 = { train: "a", valid: "b", test: "c" };
    await Deno.writeTextFile(
      `${out}/data.json`,
      JSON.stringify({ sha256, tokenizer: { id: "byte-v1", vocabSize: 260 } }),
    );
    const folder = new RunFolder(out);
    const swapped = config(out, { tokenizer: "bpe", vocabSize: 300 });
    await assertRejects(
      () => openTokenizer(swapped, folder),
      ConfigError,
      `${out}/config.json gives --tokenizer bpe, not the tokenizer the run built (byte-v1, recorded in ${out}/data.json): one of the two is another run's or was edited; restore it`,
    );
    const own = await openTokenizer(
      config(out, { tokenizer: "byte", vocabSize: 260 }),
      folder,
    );
    assertEquals(own.id, "byte-v1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// The tests below were written against mutants of run_folder.ts that its
// tests let pass (tools/mutate.ts and near misses planted by hand; see
// docs/testing.md).

Deno.test("weightsSha256 is the SHA-256 of the whole file, over more than one read; a FIFO is refused, not read", async () => {
  const { dir, out } = await tempRun();
  const folder = new RunFolder(out);
  await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
  // 1 MiB + 3 bytes: two reads of the 1 MiB buffer, every byte distinct
  // from its neighbour's position.
  const bytes = new Uint8Array((1 << 20) + 3).map((_, i) => (i * 7 + 1) % 251);
  await Deno.writeFile(folder.weightsPath(0, "ar"), bytes);
  const want = [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  assertEquals(await folder.weightsSha256(0, "ar"), want);
  await Deno.remove(folder.weightsPath(0, "ar"));
  await new Deno.Command("mkfifo", { args: [folder.weightsPath(0, "ar")] })
    .output();
  const e = await refusedWithin(
    () => folder.weightsSha256(0, "ar"),
    folder.weightsPath(0, "ar"),
  );
  assert(
    e.message.includes("it is a FIFO (expected a regular file)"),
    e.message,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("config.json of exactly 1 MiB is read; one byte more is refused naming the cap", async () => {
  const { dir, out } = await tempRun();
  (await new RunFolder(out).start(config(out, { steps: 5, warmup: 1 })))();
  const folder = new RunFolder(out);
  const text = (await Deno.readTextFile(folder.configPath)).trimEnd();
  await Deno.writeTextFile(folder.configPath, text.padEnd(1 << 20, " "));
  assertEquals((await folder.savedConfig())?.steps, 5);
  await Deno.writeTextFile(folder.configPath, text.padEnd((1 << 20) + 1, " "));
  await assertRejects(
    () => folder.savedConfig(),
    ConfigError,
    "is larger than the 1.0 MiB a run configuration may be",
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a lock's release removes only its own lock, once: not one a takeover wrote, nor the same process's next one", async () => {
  const { dir, out } = await tempRun();
  await Deno.mkdir(out);
  const folder = new RunFolder(out);
  const release = await folder.lock();
  // Taken over meanwhile (this lock judged stale by another process).
  const theirs = JSON.stringify({ pid: 1, command: "deno other" }) + "\n";
  await Deno.writeTextFile(folder.lockPath, theirs);
  release();
  assertEquals(await Deno.readTextFile(folder.lockPath), theirs);
  await Deno.remove(folder.lockPath);
  // Released, then locked again by this process (the same text): the
  // first release, called again, leaves the second lock in place.
  const first = await folder.lock();
  first();
  const second = await folder.lock();
  first();
  assert(await Deno.stat(folder.lockPath).then(() => true, () => false));
  second();
  await assertRejects(() => Deno.stat(folder.lockPath), Deno.errors.NotFound);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lock() of a folder that does not exist says so, not that another run keeps taking it", async () => {
  const { dir, out } = await tempRun();
  await assertRejects(
    () => new RunFolder(out).lock(),
    ConfigError,
    `Cannot lock ${out}: the folder does not exist`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("lockFile() takes over a lock whose process is gone, or that is garbage, at once", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/x.lock`;
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  for (const text of [JSON.stringify({ pid: gone.pid }), "garbage"]) {
    await Deno.writeTextFile(path, text);
    const got = await within(5000, () => lockFile(path, 60_000), path);
    if (got === "timeout") throw new Error(`${text}: not taken in 5 s`);
    if ("error" in got) throw got.error;
    const lock = JSON.parse(await Deno.readTextFile(path));
    assertEquals(lock.pid, Deno.pid);
    (got as { value: () => void }).value();
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a data record without the test split's hash, or the tokenizer's size, is refused; an import record without its origin too", async () => {
  const { dir, out } = await tempRun();
  await Deno.mkdir(out);
  const folder = new RunFolder(out);
  const record = {
    sha256: { train: "a", valid: "b", test: "c" },
    tokenizer: { id: "byte-v1", vocabSize: 260 },
  };
  await Deno.writeTextFile(folder.dataPath, JSON.stringify(record));
  assertEquals(await folder.savedData(), record);
  for (
    const bad of [
      { ...record, sha256: { train: "a", valid: "b" } },
      { ...record, tokenizer: { id: "byte-v1" } },
      { ...record, tokenizer: { id: "byte-v1", vocabSize: 2.5 } },
      { ...record, tokenizer: { vocabSize: 260 } },
    ]
  ) {
    await Deno.writeTextFile(folder.dataPath, JSON.stringify(bad));
    await assertRejects(
      () => folder.savedData(),
      ConfigError,
      `${folder.dataPath} is not a data record`,
    );
  }
  const imported = { from: "hf:gpt2", architecture: "gpt2", importVersion: 2 };
  await Deno.writeTextFile(folder.importPath, JSON.stringify(imported));
  assertEquals((await folder.importRecord())?.from, "hf:gpt2");
  for (
    const bad of [
      { architecture: "gpt2" },
      { from: 1, architecture: "gpt2" },
      { from: "hf:gpt2" },
      { ...imported, importVersion: 1 },
    ]
  ) {
    await Deno.writeTextFile(folder.importPath, JSON.stringify(bad));
    await assertRejects(
      () => folder.importRecord(),
      ConfigError,
      `${folder.importPath} is not an import record`,
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--force into an empty folder moves nothing aside (no empty .replaced- folder)", async () => {
  const { dir, out } = await tempRun();
  await Deno.mkdir(out);
  (await new RunFolder(out).start(config(out, { force: true })))();
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["run"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("verifyWeights refuses a process.json that is a JSON array", async () => {
  const { dir, out } = await tempRun();
  const folder = new RunFolder(out);
  await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
  await Deno.writeTextFile(folder.weightsPath(0, "ar"), "weights");
  await Deno.writeTextFile(folder.processPath(0, "ar"), "[]");
  await assertRejects(
    () => folder.verifyWeights(0, "ar"),
    ConfigError,
    `${
      folder.processPath(0, "ar")
    } is not a process description (expected a JSON object)`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the files a run writes are indented JSON with a final newline: config.json, data.json, process.json; an import record without a version reads as version 1", async () => {
  const { dir, out } = await tempRun();
  const c = config(out, { steps: 5, warmup: 1 });
  const data = {
    sha256: { train: "a", valid: "b", test: "c" },
    tokenizer: { id: "byte-v1", vocabSize: 260 },
  };
  const folder = new RunFolder(out);
  (await folder.start(c, data))();
  assertEquals(
    await Deno.readTextFile(folder.configPath),
    JSON.stringify(c, null, 2) + "\n",
  );
  assertEquals(
    await Deno.readTextFile(folder.dataPath),
    JSON.stringify(data, null, 2) + "\n",
  );
  await Deno.mkdir(folder.modelDir(0, "ar"), { recursive: true });
  await Deno.writeTextFile(folder.weightsPath(0, "ar"), "weights");
  await folder.writeProcess(0, "ar", { kind: "autoregressive" });
  const sha = await folder.weightsSha256(0, "ar");
  assertEquals(
    await Deno.readTextFile(folder.processPath(0, "ar")),
    `{\n  "kind": "autoregressive",\n  "weightsSha256": "${sha}",\n  "weightsSeed": 0\n}\n`,
  );
  await Deno.writeTextFile(
    folder.importPath,
    JSON.stringify({ from: "hf:gpt2", architecture: "gpt2" }),
  );
  assertEquals((await folder.importRecord())?.version, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a resume looks at its own seeds' model folders only: a file named for the seed after them is not in its way", async () => {
  const { dir, out } = await tempRun();
  const c = config(out, { seeds: 2 });
  (await new RunFolder(out).start(c))();
  await Deno.writeTextFile(`${out}/seed-2`, "not a run's");
  (await new RunFolder(out).acquire(config(out, { seeds: 2, resume: true })))
    .release();
  await Deno.writeTextFile(`${out}/seed-1`, "in the way");
  await assertRejects(
    () => new RunFolder(out).acquire(config(out, { seeds: 2, resume: true })),
    ConfigError,
    `${out}/seed-1 is a file, where the run keeps its models`,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Ctrl-C's note after this process began writing, with no checkpoint yet, says nothing can be resumed", async () => {
  const { dir, out } = await tempRun();
  const folder = new RunFolder(out);
  const release = await folder.start(config(out));
  assertEquals(
    folder.interruptionNote("deno task experiment --out x"),
    `\ninterrupted before any checkpoint was written: nothing in ${out} can be resumed; start again with: deno task experiment --out x --force (the partial run is moved aside)`,
  );
  release();
  await Deno.remove(dir, { recursive: true });
});

/** What `f` writes with console.error, line by line. */
async function errorLines(f: () => Promise<unknown>): Promise<string[]> {
  const lines: string[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => lines.push(args.join(" "));
  try {
    await f().catch(() => {});
  } finally {
    console.error = error;
  }
  return lines;
}

Deno.test("lockFile() tries three takeovers of a path it cannot take, then refuses it in one line", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/x.lock`;
  await Deno.mkdir(path);
  await Deno.writeTextFile(`${path}/kept`, "the user's");
  let refused: unknown;
  const notes = await errorLines(() =>
    lockFile(path, 1000).catch((e) => refused = e)
  );
  assertEquals(
    notes,
    Array(3).fill(
      `note: ${path} was left by a process that is gone (unreadable); taking it over`,
    ),
  );
  assert(refused instanceof ConfigError);
  assertEquals(
    (refused as ConfigError).message,
    `Cannot take ${path}: it is not a lock this tool can take over (a lock is a file); move it away`,
  );
  assertEquals(await Deno.readTextFile(`${path}/kept`), "the user's");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a lock naming pid 0 reads as no holder; pid 1 at its own start time is alive; a holder's command is shown up to 120 characters", async () => {
  const { dir, out } = await tempRun();
  await Deno.mkdir(out);
  const folder = new RunFolder(out);
  await Deno.writeTextFile(folder.lockPath, JSON.stringify({ pid: 0 }));
  const notes = await errorLines(async () => (await folder.lock())());
  assertEquals(notes, [
    `note: ${folder.lockPath} was left by a process that is gone (unreadable); taking it over`,
  ]);
  const startOf = async (pid: number) => {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  };
  await Deno.writeTextFile(
    folder.lockPath,
    JSON.stringify({ pid: 1, start: await startOf(1) }),
  );
  assertEquals(await folder.writer(), 1);
  const child = sleeper();
  try {
    const start = await startOf(child.pid);
    for (const [n, shown] of [[120, 120], [121, 117]]) {
      const command = "x".repeat(n);
      await Deno.writeTextFile(
        folder.lockPath,
        JSON.stringify({ pid: child.pid, start, command }),
      );
      await assertRejects(
        () => folder.lock(),
        ConfigError,
        `(pid ${child.pid}, ${"x".repeat(shown)}${
          shown < n ? "…" : ""
        }); wait for it`,
      );
    }
  } finally {
    child.kill();
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a plain-text run read before CR became a line break is refused on resume and by verifyData as read otherwise, not as files changed (restoring them would not help)", async () => {
  const { dir, out } = await tempRun();
  try {
    const then = {
      sha256: { train: "a", valid: "b", test: "c" },
      tokenizer: { id: "byte", vocabSize: 260 },
      format: "text" as const,
    };
    const folder = new RunFolder(out);
    const first = await folder.acquire(config(out));
    await first.begin(then); // a record without "reading": reading 1
    first.release();
    const now = { ...then, reading: 2 };
    const reason =
      "it read its plain text by reading 1, a CR kept inside its line, and this version reads it by reading 2, CRLF and a lone CR line breaks";
    const resumed = await folder.acquire(config(out, { resume: true }));
    try {
      const e = await assertRejects(() => resumed.begin(now), ConfigError);
      assert(
        e.message.startsWith(`Cannot resume ${out}: ${reason}`),
        e.message,
      );
      assert(!e.message.includes("restore"), e.message);
    } finally {
      resumed.release();
    }
    const v = await assertRejects(() => folder.verifyData(now), ConfigError);
    assert(v.message.startsWith(`The run in ${out}: ${reason}`), v.message);
    await folder.verifyData({ ...then, reading: 1 }); // read as it was
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a resume is refused at begin() when its data record differs from the run's: a split's hash, how the files are read, the tokenizer's id or size", async () => {
  const { dir, out } = await tempRun();
  const record = {
    sha256: {
      train: "a".repeat(64),
      valid: "b".repeat(64),
      test: "c".repeat(64),
    },
    tokenizer: { id: "byte-v1", vocabSize: 260 },
  };
  const resume = config(out, { resume: true });
  const beginWith = async (data: unknown) => {
    const lock = await new RunFolder(out).acquire(resume);
    try {
      await lock.begin(data as never);
    } finally {
      lock.release();
    }
  };
  try {
    const first = await new RunFolder(out).acquire(config(out));
    await first.begin(record);
    first.release();
    await beginWith(record); // the same data: taken
    await beginWith(undefined); // no record now, nothing moved: taken
    const refused = [
      [
        { ...record, sha256: { ...record.sha256, valid: "d".repeat(64) } },
        `the valid data changed since the run started (valid SHA-256 bbbbbbbbbbbb… then, dddddddddddd… now)`,
      ],
      [
        {
          ...record,
          sha256: {
            ...record.sha256,
            train: "d".repeat(64),
            test: "e".repeat(64),
          },
        },
        `the train and test data changed since the run started (train SHA-256 aaaaaaaaaaaa… then, dddddddddddd… now; test SHA-256`,
      ],
      [
        { ...record, format: "text" },
        "the train, valid and test data changed since the run started (read as WikiText then, as plain text now)",
      ],
      [
        { ...record, tokenizer: { id: "bpe-v1", vocabSize: 260 } },
        "its tokenizer was byte-v1 with 260 ids, now bpe-v1 with 260",
      ],
      [
        { ...record, tokenizer: { id: "byte-v1", vocabSize: 261 } },
        "its tokenizer was byte-v1 with 260 ids, now byte-v1 with 261",
      ],
    ] as const;
    for (const [data, message] of refused) {
      await assertRejects(
        () => beginWith(data),
        ConfigError,
        `Cannot resume ${out}: ${message}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an import record's added vocabulary is kept only as an object; a record that is null or not an object is refused by name", async () => {
  const { dir, out } = await tempRun();
  await Deno.mkdir(out);
  const folder = new RunFolder(out);
  const imported = { from: "hf:gpt2", architecture: "gpt2", importVersion: 2 };
  const write = (v: unknown) =>
    Deno.writeTextFile(folder.importPath, JSON.stringify(v));
  await write({ ...imported, vocabulary: { added: { "<x>": "50257" } } });
  assertEquals((await folder.importRecord())?.added, { "<x>": "50257" });
  for (const added of [["<x>"], null, "<x>", 3]) {
    await write({ ...imported, vocabulary: { added } });
    const got = await folder.importRecord();
    assertEquals(got && "added" in got, false, JSON.stringify(added));
  }
  for (const bad of [null, 3, "hf:gpt2", [imported]]) {
    await write(bad);
    await assertRejects(
      () => folder.importRecord(),
      ConfigError,
      `${folder.importPath} is not an import record`,
    );
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("verifyData takes the recorded data, or a run without a record; a changed split is refused naming it, its file and both hashes", async () => {
  const { dir, out } = await tempRun();
  const record = {
    sha256: {
      train: "a".repeat(64),
      valid: "b".repeat(64),
      test: "c".repeat(64),
    },
    tokenizer: { id: "byte-v1", vocabSize: 260 },
  };
  try {
    await Deno.mkdir(out);
    const folder = new RunFolder(out);
    await folder.verifyData(record); // a run made before data records
    await Deno.writeTextFile(folder.configPath, JSON.stringify(config(out)));
    await Deno.writeTextFile(folder.dataPath, JSON.stringify(record));
    await folder.verifyData(record);
    await assertRejects(
      () =>
        folder.verifyData(
          { ...record, sha256: { ...record.sha256, test: "d".repeat(64) } },
          { files: { test: "/d/test.txt" } },
        ),
      ConfigError,
      `The test data of the run in ${out} (--data ${
        JSON.stringify(config(out).data)
      }: /d/test.txt) changed since it trained (test SHA-256 cccccccccccc… then, dddddddddddd… now; then: its data.json)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a resume with --data moved is checked by data.json's hashes: refused at once by a run without one, and at begin() without a record to verify", async () => {
  const { dir, out } = await tempRun();
  const record = {
    sha256: {
      train: "a".repeat(64),
      valid: "b".repeat(64),
      test: "c".repeat(64),
    },
    tokenizer: { id: "byte-v1", vocabSize: 260 },
  };
  const moved = config(out, { resume: true, data: `${dir}/moved` });
  const was = JSON.stringify(config(out).data);
  try {
    await Deno.mkdir(out);
    const folder = new RunFolder(out);
    await Deno.writeTextFile(folder.configPath, JSON.stringify(config(out)));
    // No data.json: nothing can verify the files at the new path.
    await assertRejects(
      () => folder.check(moved),
      ConfigError,
      `Cannot resume ${out}: --data is "${dir}/moved" but the run used ${was}`,
    );
    await Deno.writeTextFile(folder.dataPath, JSON.stringify(record));
    await folder.check(moved);
    const lock = await folder.acquire(moved);
    try {
      await assertRejects(
        () => lock.begin(),
        ConfigError,
        `Cannot resume ${out}: --data is "${dir}/moved" but the run used ${was}, and no data record was given to verify the files there`,
      );
      await lock.begin(record); // the same files, moved: taken
    } finally {
      lock.release();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an --out that is a file, or is inside one, is named as such", async () => {
  const { dir } = await tempRun();
  try {
    const file = `${dir}/file`;
    await Deno.writeTextFile(file, "x");
    await assertRejects(
      () => new RunFolder(file).check(config(file)),
      ConfigError,
      `--out ${file} is a file, not a folder`,
    );
    await assertRejects(
      () => new RunFolder(`${file}/run`).check(config(`${file}/run`)),
      ConfigError,
      `--out ${file}/run is inside ${file}, which is a file, not a folder; --out takes a folder: choose another`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a lock released before anything was written leaves a folder that was there before it", async () => {
  const { dir, out } = await tempRun();
  try {
    await Deno.mkdir(out);
    (await new RunFolder(out).acquire(config(out))).release();
    assertEquals((await Deno.stat(out)).isDirectory, true);
    assertEquals([...Deno.readDirSync(out)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--resume of a folder that holds no run says it starts one; of a run, or a fresh start, says nothing of it", async () => {
  const { dir, out } = await tempRun();
  const notes: string[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => notes.push(args.join(" "));
  const begin = async (extra: Record<string, unknown>) => {
    const lock = await new RunFolder(out).acquire(config(out, extra));
    try {
      await lock.begin();
    } finally {
      lock.release();
    }
    return notes.splice(0).filter((n) => n.includes("holds no run yet"));
  };
  try {
    assertEquals(await begin({}), []);
    assertEquals(await begin({ resume: true }), []);
    await Deno.remove(`${out}/config.json`);
    assertEquals(await begin({ resume: true }), [
      `note: --out ${out} holds no run yet: --resume starts one there (check --out if you meant to continue a run)`,
    ]);
  } finally {
    console.error = error;
    await Deno.remove(dir, { recursive: true });
  }
});

// A copy of an `--engine auto` run resumed with the engine auto picked
// (results.json: cpu) was refused with only `--engine is "cpu" but the
// run used "auto"`: the message now names what auto picked, and the way out.
Deno.test("a resume of an --engine auto run under another --engine names what auto picked and says to resume with --engine auto", async () => {
  const { dir, out } = await tempRun();
  try {
    const folder = new RunFolder(out);
    (await folder.start(config(out, { engine: "auto" })))();
    const refused = async (engine: string) =>
      (await assertRejects(
        () => folder.check(config(out, { engine, resume: true })),
        ConfigError,
      )).message;
    // Unfinished: no results.json to say what auto picked.
    assertEquals(
      await refused("cpu"),
      `Cannot resume ${out}: --engine is "cpu" but the run used "auto"; the run's --engine auto picks again on resume, on this machine (resume with --engine auto, or start a new run with --out DIR, or --force to replace this one)`,
    );
    const picked =
      "cpu: the fused plan on the CPU kernels (the WebGPU adapter is software)";
    await Deno.writeTextFile(
      `${out}/results.json`,
      JSON.stringify({ engine: picked, results: [] }),
    );
    assertEquals(
      await refused("webgpu"),
      `Cannot resume ${out}: --engine is "webgpu" but the run used "auto"; the run's --engine auto picked ${
        JSON.stringify(picked)
      } (results.json) and picks again on resume, on this machine (resume with --engine auto, or start a new run with --out DIR, or --force to replace this one)`,
    );
    // --engine auto resumes it; a run of an explicit engine keeps the
    // plain message.
    await folder.check(config(out, { engine: "auto", resume: true }));
    const other = `${dir}/cpu`;
    (await new RunFolder(other).start(config(other, { engine: "cpu" })))();
    await assertRejects(
      () =>
        new RunFolder(other).check(
          config(other, { engine: "tfjs", resume: true }),
        ),
      ConfigError,
      `Cannot resume ${other}: --engine is "tfjs" but the run used "cpu" (start a new run with --out DIR, or --force to replace this one)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a --resume of a folder holding no run starts afresh, so it refuses a value nothing in the run reads, as a new run does", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = resolveConfig({
      preset: "micro",
      models: "ar",
      tMin: 0.01,
      resume: true,
      out: `${dir}/run`,
    });
    await assertRejects(
      () => new RunFolder(config.out).check(config),
      ConfigError,
      "Option --t-min is read by the d3pm and bd3 contestants only, and --models is ar: it would be recorded and never used",
    );
    // The values it reads are taken.
    const read = resolveConfig({
      preset: "micro",
      models: "d3pm",
      tMin: 0.01,
      resume: true,
      out: `${dir}/run`,
    });
    await new RunFolder(read.out).check(read);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
