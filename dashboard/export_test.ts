// `deno task serve --export DIR` wrote index.html, app.js, app.css and
// data.js into any folder: a user's own index.html beside their files was
// overwritten, and a --runs folder that does not exist gave an export of 0
// runs. An export now needs a new or empty folder, or an earlier export.
import { assertEquals, assertRejects } from "@std/assert";
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
      "has no process.json inside the run",
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
