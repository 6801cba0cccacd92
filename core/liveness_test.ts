import { assert, assertEquals } from "@std/assert";
import { isProcessAlive, thisProcess } from "./liveness.ts";

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

Deno.test("isProcessAlive() is false for a gone pid marked with this host, and true for the same pid and namespace marked with another host (a cluster node sharing the folder: every host's first pid namespace has the same inode)", async () => {
  if (Deno.build.os !== "linux") return;
  const pid = await gonePid();
  const me = thisProcess();
  assert(me.host, "this host's boot id or name");
  assertEquals(
    me.host,
    Deno.readTextFileSync("/proc/sys/kernel/random/boot_id").trim(),
  );
  assertEquals(
    isProcessAlive({ pid, start: "1", ns: me.ns, host: me.host }),
    false,
  );
  const other = crypto.randomUUID();
  assertEquals(
    isProcessAlive({ pid, start: "1", ns: me.ns, host: other }),
    true,
  );
  // This very pid and start on another host: another process.
  assertEquals(isProcessAlive({ ...me, start: "1", host: other }), true);
});

Deno.test("thisProcess() names the host by its name where the boot id cannot be read", () => {
  const read = Deno.readTextFileSync;
  Deno.readTextFileSync = (path: string | URL) => {
    if (String(path).endsWith("/boot_id")) {
      throw new Deno.errors.PermissionDenied("Requires read access");
    }
    return read(path);
  };
  try {
    assertEquals(thisProcess().host, Deno.hostname());
    assert(isProcessAlive(thisProcess()));
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
