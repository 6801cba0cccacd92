// Test hooks of the CPU runtime, set for one creation only (light: child
// scripts import it without the test utilities' tfjs). Private.
import { testHooks } from "./_runtime.ts";

/**
 * Create kernels or an engine under test hooks (`testHooks` of
 * `_runtime.ts`: a grain of one, a late thread, a first job number), reset
 * after the creation whether it succeeds or throws: a hook left set would
 * change every later runtime of the process.
 */
export async function withTestHooks<R>(
  hooks: { grain?: number; delayMs?: number; firstJob?: number },
  create: () => Promise<R>,
): Promise<R> {
  testHooks.grain = hooks.grain ?? null;
  testHooks.delayMs = hooks.delayMs ?? 0;
  testHooks.firstJob = hooks.firstJob ?? 0;
  try {
    return await create();
  } finally {
    testHooks.grain = null;
    testHooks.delayMs = 0;
    testHooks.firstJob = 0;
  }
}
