import { assertEquals, assertThrows } from "@std/assert";
import { createCpuKernels, defaultThreads } from "@d3pm/cpu";

// defaultThreads() reads the environment synchronously: set, read, restore.
function withEnv<T>(value: string | undefined, f: () => T): T {
  const before = Deno.env.get("OPENBLAS_NUM_THREADS");
  if (value === undefined) Deno.env.delete("OPENBLAS_NUM_THREADS");
  else Deno.env.set("OPENBLAS_NUM_THREADS", value);
  try {
    return f();
  } finally {
    if (before === undefined) Deno.env.delete("OPENBLAS_NUM_THREADS");
    else Deno.env.set("OPENBLAS_NUM_THREADS", before);
  }
}

Deno.test("defaultThreads: OPENBLAS_NUM_THREADS when set (at most 32), else the cores", () => {
  const cores = Math.min(navigator.hardwareConcurrency ?? 1, 32);
  assertEquals(withEnv(undefined, defaultThreads), cores);
  assertEquals(withEnv("", defaultThreads), cores);
  assertEquals(withEnv("1", defaultThreads), 1);
  assertEquals(withEnv("3", defaultThreads), 3);
  assertEquals(withEnv("64", defaultThreads), 32);
  for (const bad of ["0", "-2", "1.5", "two"]) {
    assertThrows(
      () => withEnv(bad, defaultThreads),
      RangeError,
      `OPENBLAS_NUM_THREADS must be an integer ≥ 1 (the CPU kernels' threads), got "${bad}"`,
    );
  }
});

Deno.test("createCpuKernels takes its threads from OPENBLAS_NUM_THREADS unless told", async () => {
  // The promise starts synchronously inside withEnv: the default is read
  // before the first await.
  const one = await withEnv("1", () => createCpuKernels({ words: 64 }));
  try {
    assertEquals(one.threads, 1);
  } finally {
    one.dispose();
  }
  const told = await withEnv(
    "1",
    () => createCpuKernels({ words: 64, threads: 2 }),
  );
  try {
    assertEquals(told.threads, 2);
  } finally {
    told.dispose();
  }
});
