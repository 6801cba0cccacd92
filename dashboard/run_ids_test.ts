import { assertEquals } from "@std/assert";
import { findRuns, type SkippedFolder } from "./run_ids.ts";

const UUID = "0b5c2d3e-1f2a-4b3c-8d4e-5f6a7b8c9d0e";

Deno.test("findRuns() skips an import killed midway (<to>.<uuid>.partial), naming it, and lists the whole copies --force moved aside", async () => {
  const root = await Deno.makeTempDir();
  try {
    const folders = [
      "imp",
      `imp.${UUID}.partial`, // half-written: its config.json, no weights
      `imp.${UUID}.replaced`, // the earlier import, whole
      "main.replaced-2026-12-06T21-00-00-000Z", // a run moved aside, whole
      "sweep/cell.partial", // a user's name: not an import's temporary one
    ];
    for (const f of folders) {
      await Deno.mkdir(`${root}/${f}`, { recursive: true });
      await Deno.writeTextFile(`${root}/${f}/config.json`, "{}");
    }
    const skipped: SkippedFolder[] = [];
    assertEquals((await findRuns(root, { skipped })).map((r) => r.id), [
      "imp",
      `imp.${UUID}.replaced`,
      "main.replaced-2026-12-06T21-00-00-000Z",
      "sweep/cell.partial",
    ]);
    assertEquals(skipped, [{
      folder: `imp.${UUID}.partial`,
      reason:
        `folder "imp.${UUID}.partial" is not listed: an import or export that has not finished (interrupted, or still writing); once nothing writes it, remove it`,
    }]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("findRuns() names a Hugging Face export (config.json with d3pm_deno, weights at the top) as not a run, rather than listing it corrupt", async () => {
  const root = await Deno.makeTempDir();
  try {
    for (
      const [f, config] of [
        ["exp", '{"d3pm_deno":{"run":{}}}'],
        ["run", "{}"],
        ["odd", '{"d3pm_deno":1}'],
      ]
    ) {
      await Deno.mkdir(`${root}/${f}`);
      await Deno.writeTextFile(`${root}/${f}/config.json`, config);
    }
    await Deno.writeFile(`${root}/exp/model.safetensors`, new Uint8Array(8));
    // A run with a file of that name beside its config: still a run.
    await Deno.writeFile(`${root}/run/model.safetensors`, new Uint8Array(8));
    const skipped: SkippedFolder[] = [];
    assertEquals((await findRuns(root, { skipped })).map((r) => r.id), [
      "odd",
      "run",
    ]);
    assertEquals(skipped, [{
      folder: "exp",
      reason:
        'folder "exp" is not listed: it is a Hugging Face export (deno task export wrote it: config.json with d3pm_deno), not a run folder; deno task import makes a run of it',
    }]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("findRuns() names in skipped a link to a run outside the root and a folder holding runs deeper than ids reach, rather than dropping them", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir());
  try {
    const root = `${base}/runs`;
    for (
      const f of ["outside/run", "runs/ok", "runs/a/b/c/deep", "runs/x/y/z"]
    ) {
      await Deno.mkdir(`${base}/${f}`, { recursive: true });
      if (f !== "runs/x/y/z") {
        await Deno.writeTextFile(`${base}/${f}/config.json`, "{}");
      }
    }
    await Deno.symlink(`${base}/outside/run`, `${root}/escape`);
    await Deno.symlink(`${base}/outside`, `${root}/a/away`);
    const skipped: SkippedFolder[] = [];
    assertEquals((await findRuns(root, { skipped })).map((r) => r.id), ["ok"]);
    assertEquals(skipped, [
      {
        folder: "a/away",
        reason:
          'folder "a/away" is not listed: it is a link out of --runs (nothing outside is read); move the run inside, or serve the folder that holds it',
      },
      {
        folder: "a/b/c",
        reason:
          'folder "a/b/c" is not listed: it holds run folders deeper than 3 levels under --runs (an id\'s most); serve a folder nearer them',
      },
      {
        folder: "escape",
        reason:
          'folder "escape" is not listed: it is a link out of --runs (nothing outside is read); move the run inside, or serve the folder that holds it',
      },
    ]);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
