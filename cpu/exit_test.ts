// The process that used CPU engines exits cleanly: a child creates engines
// with overlapping lives, disposes some and exits with one live, several
// times over; every run must end with status 0, no signal, and nothing from
// glibc or a crash on stderr. (A rare "Segmentation fault" or "corrupted
// size vs. prev_size" at the exit of test processes was seen once; see
// kernels_test.ts for the deterministic halves: the CBLAS never unloaded,
// its thread count held across overlapping lives.)

import { assert, assertEquals } from "@std/assert";
import { blas, runChild } from "./_test_util.ts";

const RUNS = 4;

Deno.test({
  name:
    "a process exits cleanly after CPU engines with overlapping lives, one still live at exit",
  ...blas,
  fn: async () => {
    for (let i = 0; i < RUNS; i++) {
      const { stdout, stderr, ...out } = await runChild("./_exit_child.ts");
      assertEquals(
        [out.code, out.signal],
        [0, null],
        `run ${
          i + 1
        } of ${RUNS}: status ${out.code}, signal ${out.signal}\n${stderr}`,
      );
      assert(stdout.includes("done"), `run ${i + 1}: ${stdout}${stderr}`);
      assert(
        !/segmentation|corrupted|double free|abort/i.test(stderr),
        `run ${i + 1}: ${stderr}`,
      );
    }
  },
});
