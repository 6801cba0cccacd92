// For tests of what a run folder does on a full disk, a read-only disk or
// across file systems: a small tmpfs mounted for the length of a test.
// Private.

/** Run `mount ARGS`; a failure throws, naming the arguments and mount's own line. */
export async function mount(...args: string[]): Promise<void> {
  const out = await new Deno.Command("mount", { args }).output();
  if (!out.success) {
    throw new Error(
      `mount ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

/** Unmount `at`; a failure throws (else the folder's removal fails with a puzzling EBUSY). */
async function unmount(at: string): Promise<void> {
  const out = await new Deno.Command("umount", { args: [at] }).output();
  if (!out.success) {
    throw new Error(
      `umount ${at}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
}

const TMPFS = ["-t", "tmpfs", "-o", "size=64k", "tmpfs"];

// Linux, as root, and a container that allows mounts: one tmpfs mounted
// and unmounted here once, so that a test that mounts is ignored where it
// cannot (it returned early and passed, having checked nothing).
async function probe(): Promise<boolean> {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) return false;
  const dir = await Deno.makeTempDir();
  try {
    await mount(...TMPFS, dir);
  } catch {
    await Deno.remove(dir);
    return false;
  }
  try {
    await unmount(dir);
    return true;
  } finally {
    await Deno.remove(dir);
  }
}

/** Whether tests may mount here (the tests' `ignore: !MAY_MOUNT`). */
export const MAY_MOUNT: boolean = await probe();

/**
 * Run `fn` with a 64 KiB tmpfs mounted on the folder `at`, unmounted after
 * it, however it ends. A mount that fails is an error.
 */
export async function withTmpfs(
  at: string,
  fn: () => Promise<void>,
): Promise<void> {
  await mount(...TMPFS, at);
  try {
    await fn();
  } catch (e) {
    // The test's own failure is what it reports; an unmount that fails
    // after it (a file left open: "target is busy") is added, not put in
    // its place.
    await unmount(at).catch((u) => {
      if (e instanceof Error) e.message += ` (then ${(u as Error).message})`;
    });
    throw e;
  }
  await unmount(at);
}
