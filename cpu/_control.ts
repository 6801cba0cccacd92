// The control block shared by the host and the kernel threads: a header of
// Int32 words, then a ring of job slots, each its Int32 words then its
// Float64 arguments. The host posts job k into slot k mod SLOTS; every
// kernel thread runs the jobs in order and counts the ones it finished, so
// the host may post a job while the threads are still on earlier ones (a
// join elided, _runtime.ts) and waits for a slot's previous job before
// reusing it. Private.

/** Word indices of the header (Int32). */
export const CONTROL = {
  posted: 0, // jobs posted (the next job's sequence number)
  quit: 1, // 1: the threads leave (dispose)
  failed: 2, // 1 + the index of the first job that threw in a thread; 0: none
  quitDone: 3, // threads that left
  completed: 32, // jobs thread t finished, at completed + t (t ≥ 1)
  maxThreads: 32,
  words: 64,
  args: 32,
} as const;

/** Word indices in a slot (Int32). */
export const SLOT = {
  id: 0, // kernel index
  parts: 1, // threads taking part (thread 0 is the host)
  ranges: 2, // [lo, hi) of thread t at ranges + 2t
  words: 2 + 2 * CONTROL.maxThreads,
} as const;

/** Job slots in the ring. */
export const SLOTS = 8;

/** Bytes of a slot: its words, then (8-aligned) its Float64 arguments. */
export const SLOT_BYTES = 4 * SLOT.words + 8 * CONTROL.args;

/** Byte offset of slot i in the block. */
export function slotOffset(i: number): number {
  return 4 * CONTROL.words + i * SLOT_BYTES;
}

/** Byte offset of a slot's Float64 arguments from the slot's start. */
export const ARG_OFFSET = 4 * SLOT.words;

/** Bytes of the block. */
export const CONTROL_BYTES = slotOffset(SLOTS);

/** Polls before a waiting thread sleeps on the futex. */
export const SPIN = 20000;
