// The control block shared by the host and the kernel threads: one job at a
// time, Int32 words then Float64 arguments. Private.

/** Word indices of the control block (Int32). */
export const CONTROL = {
  gen: 0, // bumped once per job
  id: 1, // kernel index, −1: quit
  parts: 2, // threads taking part (thread 0 is the host)
  done: 3, // threads 1.. that finished
  failed: 4, // a thread's kernel threw
  // Claimed scheduling: chunks are taken by whichever thread asks first.
  claim: 5, // the claim word: job tag, chunks, next chunk (claimWord)
  chunks: 6, // chunks of this job
  finished: 7, // chunks finished
  ranges: 8, // [lo, hi) of thread t at ranges + 2t (claimed: per, outer)
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

/** Chunks per taking thread under claimed scheduling. */
export const CHUNKS_PER_THREAD = 4;

/** Most chunks of one job (9 bits of the claim word). */
export const MAX_CHUNKS = 511;

/**
 * The claim word of a job: its tag (14 bits, counting jobs), its chunks
 * (9 bits) and the next chunk to take (9 bits). The host writes it last,
 * after the job's words.
 */
export function claimWord(tag: number, chunks: number): number {
  return ((tag & 0x3fff) << 18) | (chunks << 9);
}

/**
 * Take the next chunk of the job whose claim word read `first`: its index,
 * or −1 when none is left or that job is no longer the current one. A chunk
 * taken means the job was unfinished when its words were read (the host
 * writes the next job's only after every chunk finished), so a late thread
 * never runs a later job's words as this one's, nor touches its counter.
 */
export function claimChunk(ctrl: Int32Array, first: number): number {
  const tag = first >>> 18;
  for (;;) {
    const v = Atomics.load(ctrl, CONTROL.claim);
    if (v >>> 18 !== tag || (v & 0x1ff) >= ((v >>> 9) & 0x1ff)) return -1;
    if (Atomics.compareExchange(ctrl, CONTROL.claim, v, v + 1) === v) {
      return v & 0x1ff;
    }
  }
}
