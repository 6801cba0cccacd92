import { assert, assertEquals } from "@std/assert";
import { bootTime, isProcessAlive, markHost, thisProcess } from "./liveness.ts";

/** A pid that ran and is gone: a child that has exited. */
async function gonePid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("isProcessAlive() is false for a gone pid of this namespace, and true for the same pid marked with another namespace (a container's: its pid names no process here)", async () => {
  if (Deno.build.os !== "linux") return;
  const pid = await gonePid();
  const me = thisProcess();
  assert(me.ns?.startsWith("pid:["), `ns: ${me.ns}`);
  assertEquals(isProcessAlive({ pid, start: "1" }), false);
  assertEquals(isProcessAlive({ pid, start: "1", ns: me.ns }), false);
  assertEquals(isProcessAlive({ pid, start: "1", ns: "pid:[1]" }), true);
  // This very pid and start, but in another namespace: another process.
  assertEquals(isProcessAlive({ ...me, start: "1", ns: "pid:[1]" }), true);
});

Deno.test("isProcessAlive() is false for a gone pid marked with this host, and true for the same pid and namespace marked with another host name (a cluster node sharing the folder: every host's first pid namespace has the same inode)", async () => {
  if (Deno.build.os !== "linux") return;
  const pid = await gonePid();
  const me = thisProcess();
  assertEquals(
    me.host,
    Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim(),
  );
  assertEquals(me.hostname, Deno.hostname());
  assertEquals(isProcessAlive({ ...me, pid, start: "1" }), false);
  const other = { host: crypto.randomUUID(), hostname: `${me.hostname}-2` };
  assertEquals(markHost({ ...me, ...other }), "another");
  assertEquals(isProcessAlive({ ...me, ...other, pid, start: "1" }), true);
  // Another host name, the same boot id (cannot be one host): another host.
  assertEquals(
    isProcessAlive({ ...me, hostname: other.hostname, pid, start: "1" }),
    true,
  );
  // This very pid and start on another host: another process.
  assertEquals(isProcessAlive({ ...me, ...other }), true);
});

// Plant (besides the earlier ones): `since` ignored (a twin machine of
// this host's name, marked since this host booted, judged gone: its live
// lock taken over, as a review did on two VMs named vm).
Deno.test("isProcessAlive() takes a process of this host name and another boot to be gone (this host before a reboot), even where its pid and start now name a live process — unless marked since this host booted (another machine of the same name: alive); another boot without a host name cannot be placed (alive)", () => {
  if (Deno.build.os !== "linux") return;
  // Marked before this host booted (an older lock has no `since` at all).
  const { since: _since, ...me } = thisProcess();
  const before = crypto.randomUUID();
  // This very process's pid and start: alive but for the boot.
  assertEquals(markHost({ ...me, host: before }), "earlier boot");
  assertEquals(isProcessAlive({ ...me, host: before }), false);
  assertEquals(isProcessAlive({ ...me, host: before, since: 0 }), false);
  // The same, marked since this host booted: another machine of this name
  // (every VM here is named vm), alive.
  const twin = { ...me, host: before, since: Date.now() };
  assertEquals(markHost(twin), "another");
  assertEquals(isProcessAlive(twin), true);
  // The same boot id in capitals is the same boot.
  assertEquals(isProcessAlive({ ...me, host: me.host!.toUpperCase() }), true);
  // No host name on the mark: another host, or this one rebooted.
  const { hostname: _, ...nameless } = me;
  assertEquals(markHost({ ...nameless, host: before }), "unknown");
  assertEquals(isProcessAlive({ ...nameless, host: before }), true);
  // A host name where a boot id belongs (a development version's
  // fallback): no boot recorded, judged by /proc.
  assertEquals(markHost({ ...me, host: "vm" }), "this");
  assertEquals(isProcessAlive({ ...me, host: "vm" }), true);
  assertEquals(isProcessAlive({ ...me, host: "vm", start: "1" }), false);
});

Deno.test("thisProcess() leaves the boot out where it cannot be read (never the host name in its place): a gone process of this host is still judged by /proc, and a live one is alive", async () => {
  if (Deno.build.os !== "linux") return;
  const pid = await gonePid();
  const read = Deno.readTextFileSync;
  const boot = thisProcess().host;
  Deno.readTextFileSync = (path: string | URL) => {
    if (String(path).endsWith("/boot_id")) {
      throw new Deno.errors.PermissionDenied("Requires read access");
    }
    return read(path);
  };
  try {
    const me = thisProcess();
    assertEquals(me.host, undefined);
    assertEquals(me.hostname, Deno.hostname());
    assert(isProcessAlive(me));
    // Written by a process that could read the boot: still this host's.
    assertEquals(isProcessAlive({ ...me, host: boot, pid, start: "1" }), false);
    assertEquals(isProcessAlive({ ...me, pid, start: "1" }), false);
  } finally {
    Deno.readTextFileSync = read;
  }
});

Deno.test("isProcessAlive() takes a process whose /proc cannot be read (PermissionDenied: --allow-read without /proc, hidepid) to be alive; only NotFound is gone", async () => {
  if (Deno.build.os !== "linux") return;
  const pid = await gonePid();
  const read = Deno.readTextFileSync;
  const refuse = (error: Error) => {
    Deno.readTextFileSync = (path: string | URL) => {
      if (String(path).startsWith("/proc/")) throw error;
      return read(path);
    };
  };
  try {
    for (
      const error of [
        new Deno.errors.PermissionDenied("Requires read access to /proc"),
        new Deno.errors.NotCapable("Requires read access to /proc"),
        new Error("EIO"),
      ]
    ) {
      refuse(error);
      assertEquals(isProcessAlive({ pid, start: "1" }), true, error.message);
      assertEquals(isProcessAlive({ pid }), true, error.message); // bare pid
    }
    refuse(new Deno.errors.NotFound("No such file or directory"));
    assertEquals(isProcessAlive({ pid, start: "1" }), false);
    assertEquals(isProcessAlive({ pid }), false);
  } finally {
    Deno.readTextFileSync = read;
  }
});

Deno.test("isProcessAlive() takes a bare pid whose command line cannot be read to be alive (cannot tell it is not a Deno)", async () => {
  if (Deno.build.os !== "linux") return;
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const read = Deno.readTextFileSync;
  try {
    assertEquals(isProcessAlive({ pid: child.pid }), false); // a sleep
    Deno.readTextFileSync = (path: string | URL) => {
      if (String(path).endsWith("/cmdline")) {
        throw new Deno.errors.PermissionDenied("Requires read access");
      }
      return read(path);
    };
    assertEquals(isProcessAlive({ pid: child.pid }), true);
  } finally {
    Deno.readTextFileSync = read;
    child.kill();
    await child.status;
  }
});

/** A process's start time read by hand: `/proc/<pid>/stat`'s field 22 (clock ticks after boot), for a command without spaces. */
function startByHand(pid: number | "self"): string {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.split(" ");
  assert(/^\(\S+\)$/.test(fields[1]), `a command without spaces: ${stat}`);
  return fields[21];
}

// Plants (each fails this test): the start time read from another field
// (`[19]` → `[18]`, `[20]`; `+ 2` → `+ 1`, `- 2`), the live start compared
// inverted (`mark.start === start` → `!==`), selfStart() dropping every
// start (`=== "gone"` → `!==`).
Deno.test("isProcessAlive() takes another live process marked with its own start time (field 22 of its stat) to be alive, and the same pid with another start to be gone; thisProcess() records its own", async () => {
  if (Deno.build.os !== "linux") return;
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  try {
    const start = startByHand(child.pid);
    assert(/^\d+$/.test(start), start);
    assertEquals(isProcessAlive({ pid: child.pid, start }), true);
    const other = String(Number(start) + 1);
    assertEquals(isProcessAlive({ pid: child.pid, start: other }), false);
    assertEquals(isProcessAlive({ pid: child.pid, start: "0" }), false);
    assertEquals(thisProcess().start, startByHand("self"));
  } finally {
    child.kill();
    await child.status;
  }
});

// Plants (each fails this test): btime's value read from its 7th
// character (`slice(6)` → `slice(7)`), seconds divided or scaled by 999
// (`* 1000` → `/ 1000`, `* 999`), a btime line that is not a number
// returned as NaN (`line && …` → `||`).
Deno.test("bootTime() is /proc/stat's btime in ms, the boot /proc/uptime places, and undefined where btime is not a number", () => {
  if (Deno.build.os !== "linux") return;
  const booted = bootTime();
  const uptime = Number(Deno.readTextFileSync("/proc/uptime").split(" ")[0]);
  // btime is whole seconds; the two files are read a moment apart.
  const byUptime = Date.now() - uptime * 1000;
  assert(
    booted !== undefined && Math.abs(booted - byUptime) < 5000,
    `btime ${booted}, by uptime ${byUptime}`,
  );
  assertEquals(booted! % 1000, 0);
  const read = Deno.readTextFileSync;
  try {
    for (const stat of ["cpu 1 2\nbtime x\n", "cpu 1 2\n"]) {
      Deno.readTextFileSync = (path: string | URL) =>
        String(path) === "/proc/stat" ? stat : read(path);
      assertEquals(bootTime(), undefined, stat);
    }
  } finally {
    Deno.readTextFileSync = read;
  }
});

// Plant: `mark.since >= booted` → `>` (a mark taken at btime counted as
// this host before its boot: btime is cut to whole seconds, so the boot
// came at or after it; a mark there cannot be shown earlier, and what
// cannot be told is alive).
Deno.test("markHost() takes a mark of this host name and another boot, taken at the very time this host booted, to be another machine's", () => {
  if (Deno.build.os !== "linux") return;
  const booted = bootTime();
  const me = thisProcess();
  if (booted === undefined || me.host === undefined) return;
  const host = crypto.randomUUID();
  assertEquals(markHost({ ...me, host, since: booted }), "another");
  assertEquals(markHost({ ...me, host, since: booted - 1 }), "earlier boot");
});
