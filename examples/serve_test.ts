import { fromFileUrl } from "@d3pm/core";
import { assertEquals } from "@std/assert";

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
