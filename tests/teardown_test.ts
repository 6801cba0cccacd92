// withTeardown(): the browser tests' teardown never hides a test's error.
import { assertEquals, assertRejects } from "@std/assert";
import { withTeardown } from "./_teardown.ts";

/** Capture console.error's lines while `fn` runs. */
async function logged(fn: () => Promise<unknown>): Promise<string[]> {
  const lines: string[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => void lines.push(args.join(" "));
  try {
    await fn();
  } finally {
    console.error = error;
  }
  return lines;
}

Deno.test("withTeardown() reports the test's own error when a teardown step throws too, runs every step last first, and logs the step's error", async () => {
  const ran: string[] = [];
  const run = () =>
    withTeardown(async (defer) => {
      defer("removing the folder", () => void ran.push("folder"));
      defer("closing Chromium", () => {
        ran.push("chromium");
        throw new Error("close failed");
      });
      defer("shutting the server down", () => void ran.push("server"));
      await Promise.resolve();
      throw new Error("the page said no");
    });
  const lines = await logged(() =>
    assertRejects(run, Error, "the page said no")
  );
  assertEquals(ran, ["server", "chromium", "folder"]);
  assertEquals(lines.length, 1, lines.join("\n"));
  assertEquals(
    lines[0].split("\n")[0],
    "teardown: closing Chromium failed too (an earlier error is reported): Error: close failed",
  );
});

Deno.test("withTeardown() fails a test that passed with its first teardown error, after every step ran", async () => {
  const ran: string[] = [];
  const lines = await logged(() =>
    assertRejects(
      () =>
        withTeardown((defer) => {
          defer("removing the folder", () => {
            ran.push("folder");
            throw new Error("remove failed");
          });
          defer("closing Chromium", () => {
            ran.push("chromium");
            throw new Error("close failed");
          });
          return Promise.resolve(1);
        }),
      Error,
      "close failed",
    )
  );
  assertEquals(ran, ["chromium", "folder"]);
  assertEquals(lines.map((l) => l.split("\n")[0]), [
    "teardown: removing the folder failed too (an earlier error is reported): Error: remove failed",
  ]);
  assertEquals(await withTeardown(() => Promise.resolve(7)), 7);
});
