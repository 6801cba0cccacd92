// The control block shared by the host and the kernel threads: one job at a
// time, Int32 words then Float64 arguments. Private.

/** Word indices of the control block (Int32). */
export const CONTROL = {
  gen: 0, // bumped once per job
  id: 1, // kernel index, −1: quit
  parts: 2, // threads taking part (thread 0 is the host)
  done: 3, // threads 1.. that finished
  failed: 4, // a thread's kernel threw
  ranges: 8, // [lo, hi) of thread t at ranges + 2t
  maxThreads: 32,
  words: 8 + 64,
  args: 32,
} as const;

/** Byte offset of the Float64 arguments in the block. */
export const ARG_OFFSET = 512;

/** Bytes of the block. */
export const CONTROL_BYTES = ARG_OFFSET + 8 * CONTROL.args;

/** Polls before a waiting thread sleeps on the futex. */
export const SPIN = 20000;
