// A test's teardown that never hides the test's own error: every step runs,
// last registered first, whatever the test or another step threw.

/** Registers a step of the teardown (`what` names it in a log line). */
export type Defer = (what: string, step: () => unknown) => void;

/**
 * Run `fn`, then every step it deferred, last first, each whatever the
 * others threw. When `fn` threw, that is the error, and a step's error is
 * logged (naming the step) instead of replacing it; when `fn` passed, the
 * first step's error is, and the others' are logged.
 */
export async function withTeardown<T>(
  fn: (defer: Defer) => Promise<T>,
): Promise<T> {
  const steps: [string, () => unknown][] = [];
  let failure: { error: unknown } | undefined;
  let result: T | undefined;
  try {
    result = await fn((what, step) => void steps.push([what, step]));
  } catch (e) {
    failure = { error: e };
  }
  for (const [what, step] of steps.reverse()) {
    try {
      await step();
    } catch (e) {
      if (failure === undefined) failure = { error: e };
      else {
        console.error(
          `teardown: ${what} failed too (an earlier error is reported): ${
            e instanceof Error ? e.stack ?? e.message : e
          }`,
        );
      }
    }
  }
  if (failure !== undefined) throw failure.error;
  return result as T;
}
