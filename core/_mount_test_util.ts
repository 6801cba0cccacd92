// For tests of what a run folder does on a full disk, a read-only disk or
// across file systems: a small tmpfs mounted for the length of a test.
// Private.

async function mount(args: string[]): Promise<boolean> {
  const out = await new Deno.Command("mount", { args, stderr: "null" })
    .output().catch(() => undefined);
  return out?.success === true;
}

async function unmount(at: string): Promise<void> {
  await new Deno.Command("umount", { args: [at] }).output();
}

const TMPFS = ["-t", "tmpfs", "-o", "size=64k", "tmpfs"];

// Linux, as root, and a container that allows mounts: one tmpfs mounted
// and unmounted here once, so that a test that mounts is ignored where it
// cannot (it returned early and passed, having checked nothing).
async function probe(): Promise<boolean> {
  if (Deno.build.os !== "linux" || Deno.uid() !== 0) return false;
  const dir = await Deno.makeTempDir();
  try {
    if (!(await mount([...TMPFS, dir]))) return false;
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
  if (!(await mount([...TMPFS, at]))) {
    throw new Error(`Cannot mount a tmpfs on ${at} (MAY_MOUNT said it could)`);
  }
  try {
    await fn();
  } finally {
    await unmount(at);
  }
}
