// What an export or import killed midway leaves beside its target is named
// on the next one (review of interrupts, findings 3 and 4): the states are
// made here as a kill at each point leaves them.
import { assertEquals, assertRejects } from "@std/assert";
import { pathExists } from "@d3pm/core";
import { type Target, writeDirectory } from "./_output.ts";
import { InteropError } from "./errors.ts";

const UUID = "0b5c2d3e-1f2a-4b3c-8d4e-5f6a7b8c9d0e";

function target(path: string, log: string[], force = false): Target {
  return {
    path,
    force,
    flag: "--to",
    what: "an export",
    marker: "a.txt",
    writes: ["a.txt"],
    wrote: (dir) => pathExists(`${dir}/a.txt`),
    log: (line) => log.push(line),
  };
}

const fill = (text: string) => (dir: string) =>
  Deno.writeTextFile(`${dir}/a.txt`, text);

Deno.test("writeDirectory() refuses a missing target whose earlier copy an interrupted --force left in <path>.<uuid>.replaced, with the mv that restores it, and touches nothing", async () => {
  const root = await Deno.makeTempDir();
  try {
    const E = `${root}/E`;
    // Killed between the two renames: the old copy aside, the new one
    // complete under its temporary name, E gone.
    await Deno.mkdir(`${E}.${UUID}.replaced`);
    await Deno.writeTextFile(`${E}.${UUID}.replaced/a.txt`, "old");
    await Deno.mkdir(`${E}.${UUID}.partial`);
    await Deno.writeTextFile(`${E}.${UUID}.partial/a.txt`, "new");
    const log: string[] = [];
    for (const force of [false, true]) {
      await assertRejects(
        () => writeDirectory(target(E, log, force), fill("again")),
        InteropError,
        `${E} is missing, but ${E}.${UUID}.replaced holds the copy an interrupted --force moved aside before putting the new one in place: restore it with: mv ${E}.${UUID}.replaced ${E} — or remove it (rm -r ${E}.${UUID}.replaced) to write a new one`,
      );
    }
    assertEquals(await pathExists(E), false);
    assertEquals(
      await Deno.readTextFile(`${E}.${UUID}.replaced/a.txt`),
      "old",
    );
    assertEquals(await Deno.readTextFile(`${E}.${UUID}.partial/a.txt`), "new");
    // Restored as told: a --force replaces it, and names the .partial.
    await Deno.rename(`${E}.${UUID}.replaced`, E);
    await writeDirectory(target(E, log, true), fill("again"));
    assertEquals(await Deno.readTextFile(`${E}/a.txt`), "again");
    assertEquals(log, [
      `warning: ${E}.${UUID}.partial was left by an export or import of ${E} that did not finish (interrupted, or still writing): once nothing writes it, remove it: rm -r ${E}.${UUID}.partial`,
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("writeDirectory() names a half-written <path>.<uuid>.partial and an earlier <path>.<uuid>.replaced beside a present target, and removes neither", async () => {
  const root = await Deno.makeTempDir();
  try {
    const E = `${root}/E2`;
    // Killed while writing its weights: a truncated file.
    await Deno.mkdir(`${E}.${UUID}.partial`);
    await Deno.writeFile(
      `${E}.${UUID}.partial/model.safetensors`,
      new Uint8Array(7),
    );
    // Another target's leftover and a user's folder of a like name: not E2's.
    await Deno.mkdir(`${root}/E22.${UUID}.partial`);
    await Deno.mkdir(`${E}.mine.partial`);
    const log: string[] = [];
    await writeDirectory(target(E, log), fill("one"));
    assertEquals(log, [
      `warning: ${E}.${UUID}.partial was left by an export or import of ${E} that did not finish (interrupted, or still writing): once nothing writes it, remove it: rm -r ${E}.${UUID}.partial`,
    ]);
    assertEquals(await pathExists(`${E}.${UUID}.partial`), true);
    // Killed after the new copy was in place, before the old was removed.
    await Deno.remove(`${E}.${UUID}.partial`, { recursive: true });
    await Deno.mkdir(`${E}.${UUID}.replaced`);
    log.length = 0;
    await writeDirectory(target(E, log, true), fill("two"));
    assertEquals(log, [
      `warning: ${E}.${UUID}.replaced is an earlier copy of ${E} left by an interrupted --force: remove it if it is not needed: rm -r ${E}.${UUID}.replaced`,
    ]);
    assertEquals(await Deno.readTextFile(`${E}/a.txt`), "two");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("writeDirectory() with several copies moved aside names them all, newest first with their times, and restores the newest", async () => {
  const root = await Deno.makeTempDir();
  try {
    const E = `${root}/E`;
    // The UUIDs' order is the reverse of the copies' age.
    const [older, newer] = [
      `${E}.ffffffff-1f2a-4b3c-8d4e-5f6a7b8c9d0e.replaced`,
      `${E}.00000000-1f2a-4b3c-8d4e-5f6a7b8c9d0e.replaced`,
    ];
    for (const [dir, ms] of [[older, 1e12], [newer, 2e12]] as const) {
      await Deno.mkdir(dir);
      await Deno.utime(dir, ms / 1000, ms / 1000);
    }
    const at = (ms: number) => new Date(ms).toISOString();
    await assertRejects(
      () => writeDirectory(target(E, []), fill("again")),
      InteropError,
      `${E} is missing, but 2 copies interrupted --force runs moved aside are beside it, newest first: ${newer} (modified ${
        at(2e12)
      }), ${older} (modified ${
        at(1e12)
      }); restore the newest with: mv ${newer} ${E} — or remove them (rm -r ${newer} ${older}) to write a new one`,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
