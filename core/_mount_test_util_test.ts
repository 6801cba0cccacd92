import { assertRejects } from "@std/assert";
import { MAY_MOUNT, withTmpfs } from "./_mount_test_util.ts";

// A test that fails with a file left open on the tmpfs: its own failure is
// reported, the unmount's "target is busy" added (it replaced it before).
Deno.test({
  name:
    "withTmpfs() reports the test's own failure, not the unmount's that follows it",
  ignore: !MAY_MOUNT,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    let open: Deno.FsFile | undefined;
    try {
      await assertRejects(
        () =>
          withTmpfs(dir, async () => {
            open = await Deno.open(`${dir}/a`, { write: true, create: true });
            throw new Error("the test's assertion");
          }),
        Error,
        "the test's assertion (then umount",
      );
    } finally {
      open?.close();
      await new Deno.Command("umount", { args: [dir] }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
