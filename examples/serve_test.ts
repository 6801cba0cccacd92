import { fromFileUrl } from "@d3pm/core";
import { assert, assertEquals } from "@std/assert";
import { fakeRun } from "../dashboard/_test_util.ts";

const SERVE = fromFileUrl(new URL("./serve.ts", import.meta.url));

/** Run serve; one that is still running after 20 s (serving) is killed. */
async function serve(...args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVE, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const out = await child.output().finally(() => clearTimeout(timer));
  return {
    code: out.code,
    stderr: new TextDecoder().decode(out.stderr).trim().split("\n"),
  };
}

Deno.test("serve refuses a --runs that is a file or a FIFO in one line, before bundling the page", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/file`, "x");
    const file = await serve("--runs", `${dir}/file`, "--port", "0");
    assertEquals(file, {
      code: 1,
      stderr: [
        `error: --runs ${dir}/file is a file: it must be the folder of run folders`,
      ],
    });
    await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    const fifo = await serve("--runs", `${dir}/fifo`, "--port", "0");
    assertEquals(fifo.stderr, [
      `error: --runs ${dir}/fifo is a FIFO: it must be the folder of run folders`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve names a port in use and what --port takes in one line, before bundling the page", async () => {
  const dir = await Deno.makeTempDir();
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (held.addr as Deno.NetAddr).port;
    const r = await serve("--runs", dir, "--port", String(port));
    assertEquals(r, {
      code: 1,
      stderr: [
        `error: Cannot listen on 127.0.0.1:${port}: the port is in use; choose another --port, or --port 0 for any free one`,
      ],
    });
  } finally {
    held.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Serve `root` on a free port; resolves once it prints its address. */
async function serving(root: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVE, "--runs", root, "--port", "0"],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/http:\/\/\S+\//.test(out)) {
    const { done, value } = await lines.read();
    if (done) break;
    out += value;
  }
  lines.releaseLock();
  child.stdout.cancel().catch(() => {});
  const stderr = new Response(child.stderr).text();
  return {
    child,
    url: /http:\/\/\S+\//.exec(out)![0],
    stderr,
    done: () => clearTimeout(killer),
  };
}

Deno.test({
  name:
    "Ctrl-C stops serve within a few seconds while a page follows a run's metrics stream",
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir();
    try {
      await fakeRun(`${root}/r`);
      const { child, url, stderr, done } = await serving(root);
      try {
        const r = await fetch(`${url}api/run/metrics?run=r`);
        const reader = r.body!.getReader();
        const first = new TextDecoder().decode((await reader.read()).value);
        assertEquals(first.startsWith("event: metric"), true);
        const t0 = Date.now();
        child.kill("SIGINT");
        // A second Ctrl-C after 8 s (exit 130 at once), failing the test.
        const again = setTimeout(() => child.kill("SIGINT"), 8_000);
        const status = await child.status.finally(() => clearTimeout(again));
        const seconds = (Date.now() - t0) / 1000;
        assert(seconds < 5, `serve took ${seconds} s to stop`);
        assertEquals(status.success, true, await stderr);
        await reader.cancel().catch(() => {});
      } finally {
        done();
      }
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("serve refuses a --runs that is a run folder itself in one line naming its parent, before bundling the page", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  try {
    await fakeRun(`${dir}/run`);
    const r = await serve("--runs", `${dir}/run`, "--port", "0");
    assertEquals(r, {
      code: 1,
      stderr: [
        `error: --runs ${dir}/run is a run folder (it holds config.json), not the folder of run folders: give its parent, --runs ${dir} (the run's id there is run)`,
      ],
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
