// For tests of readers that must not block: a FIFO or a device put where a
// file is read hangs the reader, so the test gives up after a deadline
// (and releases the FIFO's reader) instead of hanging with it.

/**
 * What `read` did within `ms`, or "timeout"; a read blocked on the FIFO at
 * `fifo` is then released (its writer side opened and closed), so a
 * regression fails the test instead of hanging it.
 */
export async function within<T>(
  ms: number,
  read: () => Promise<T>,
  fifo?: string,
): Promise<{ value: T } | { error: unknown } | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((r) => {
    timer = setTimeout(() => r("timeout"), ms);
  });
  const settled = read().then((value) => ({ value }), (error) => ({ error }));
  const out = await Promise.race([settled, timeout]);
  clearTimeout(timer);
  if (out === "timeout" && fifo) {
    // Read and write: opening a FIFO so never blocks (Linux), and it
    // releases a reader blocked in its open or read; write-only would wait
    // for ever for a reader that never came (a read stuck elsewhere).
    (await Deno.open(fifo, { read: true, write: true })).close();
    // The released read ends now; one stuck elsewhere is not waited for
    // beyond another `ms` (the test fails on "timeout", and Deno's
    // sanitizer names the op left running, instead of hanging).
    let wait: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      settled,
      new Promise((r) => wait = setTimeout(r, ms)),
    ]);
    clearTimeout(wait);
  }
  return out;
}
