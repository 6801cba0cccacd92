// `deno task evaluate` refuses option pairs it would not honour, before it
// reads the run folder (here none exists).
import { assertEquals } from "@std/assert";
import { errorLine, runTool } from "./_run.ts";

Deno.test("evaluate refuses --blocks with --gen-samples instead of ignoring it", async () => {
  const run = "/nonexistent/run";
  const both = await runTool("evaluate.ts", [
    "--run",
    run,
    "--model",
    "d3pm",
    "--gen-samples",
    "2",
    "--judge",
    "self",
    "--blocks",
    "4",
  ]);
  assertEquals(both.code === 0, false, both.stderr);
  assertEquals(
    errorLine(both),
    "error: Option --blocks sets the test blocks scored; with --gen-samples the generated rows are scored and every test block is the unigram reference: leave one out",
  );
  // Each alone passes the check and goes on to read the (missing) run.
  for (
    const args of [["--blocks", "4"], ["--gen-samples", "2", "--judge", "self"]]
  ) {
    const one = await runTool("evaluate.ts", ["--run", run, ...args]);
    assertEquals(errorLine(one).includes("--blocks"), false, one.stderr);
  }
});
