// The job ring's sequence numbers wrap: they are int32 words of the control
// block (2³¹ − 1 → −2³¹, after 2³¹ jobs posted: days of training, not 2⁵³),
// and the host and the threads compare them modulo 2³². A child process
// (_wrap_child.ts) starts them near the wrap (testHooks.firstJob) and runs
// across it: training steps of a small model and a chain of row-local jobs
// with a late thread (joins left out, the host waiting on ring slots), each
// against the same work numbered from 0. Same bits, and within a bounded
// time (a comparison that is not modulo 2³² can wait for ever, or let the
// host rewrite a slot a thread has not run). A child, so that a hang fails
// the test instead of the test process.

import { assert, assertEquals } from "@std/assert";
import { blas, runChild } from "./_test_util.ts";

const LIMIT_MS = 120_000;

Deno.test({
  name:
    "the job ring's int32 sequence numbers wrap inside a run: the same bits as numbered from 0, and no hang",
  ...blas,
  fn: async () => {
    const start = Date.now();
    const out = await runChild("./_wrap_child.ts", LIMIT_MS);
    assert(
      Date.now() - start < LIMIT_MS,
      `the child was stopped after ${LIMIT_MS / 1000} s: a hang at the wrap`,
    );
    assertEquals([out.code, out.signal], [0, null], out.stderr);
    const r = JSON.parse(out.stdout.trim());
    // Training: the wrap falls inside the second step.
    const { plain, wrapped } = r.train;
    assert(r.perStep > 8, `${r.perStep} jobs a step`);
    assertEquals(plain.posted[0], 0);
    assert(wrapped.posted[1] > 0 && wrapped.posted[2] < 0, `${wrapped.posted}`);
    assertEquals(
      wrapped.posted.map((p: number) => (p - wrapped.posted[0]) | 0),
      plain.posted,
    );
    assertEquals(wrapped.losses, plain.losses, "losses");
    assert(plain.losses.every(Number.isFinite));
    assertEquals(wrapped.weights, plain.weights, "weights");
    // The chain: started 20 jobs before the wrap, 40 jobs.
    const c = r.chain;
    assertEquals([c.plain.first, c.plain.last], [0, 40]);
    assertEquals([c.wrapped.first, c.wrapped.last], [
      2 ** 31 - 20,
      -(2 ** 31) + 20,
    ]);
    assertEquals(c.wrapped.y, c.plain.y, "the chain's output");
    assertEquals(c.wrapped.mean, c.plain.mean, "the chain's means");
  },
});
