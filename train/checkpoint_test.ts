import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { decodeSafetensors, encodeSafetensors } from "@d3pm/core";
import {
  checkpointBytes,
  CheckpointError,
  loadCheckpoint,
  readCheckpointState,
} from "./checkpoint.ts";
import { train } from "./loop.ts";

await tf.setBackend("cpu");

// A real checkpoint, as train() writes it: 3 steps of one weight.
async function written(path: string): Promise<void> {
  const w = tf.variable(tf.scalar(0));
  const r = await train({
    variables: new Map([["w", w]]),
    loss: () => tf.tidy(() => w.sub(1).square()) as tf.Scalar,
    blocks: { data: Uint32Array.of(1, 2, 3, 4), count: 2, length: 2 },
    batchSize: 1,
    steps: 3,
    lr: () => 0.1,
    checkpoint: path,
    config: { run: "demo" },
    engineName: "A",
    progress: false,
  });
  r.optimizer.dispose();
  w.dispose();
}

// Plants: readCheckpointState reading `state` without checking `format`
// (the weights-only file passes), without the object check (null and a
// list fail later, or read as "lacks step"), and mapping a safetensors
// error to "no such file" (a torn file reads as an absent one).
Deno.test("readCheckpointState() reads train()'s state from the header and refuses torn, non-object and foreign files in one line naming the file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/checkpoint.safetensors`;
    await written(path);
    const state = await readCheckpointState(path);
    // The same state loadCheckpoint reads with the tensors.
    assertEquals(state, (await loadCheckpoint(path)).state);
    assertEquals(
      [state.step, state.config, state.engines],
      [3, { run: "demo" }, [{ engine: "A", fromStep: 0 }]],
    );
    const refused = async (file: string, message: string, detail: string) => {
      const e = await assertRejects(
        () => readCheckpointState(file),
        CheckpointError,
      );
      assertEquals([e.message, e.detail], [message, detail]);
      assertEquals(e.message.includes("\n"), false);
    };
    const fix =
      "; restore it, or delete it to train this model again from step 0";
    // Absent.
    await refused(
      `${dir}/none`,
      `Cannot read checkpoint ${dir}/none: no such file`,
      "no such file",
    );
    // Torn: a write cut short leaves the header promising more data.
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(`${dir}/torn`, bytes.subarray(0, bytes.length - 5));
    const torn = await assertRejects(
      () => readCheckpointState(`${dir}/torn`),
      CheckpointError,
    );
    assertEquals(
      torn.message,
      `Checkpoint ${dir}/torn is corrupt: ${torn.detail}${fix}`,
    );
    assertEquals(torn.detail.includes(dir), false); // the file once, not twice
    assertEquals(torn.detail.endsWith("(truncated file?)"), true);
    // Torn inside its header.
    await Deno.writeFile(`${dir}/torn`, bytes.subarray(0, 20));
    await refused(
      `${dir}/torn`,
      `Checkpoint ${dir}/torn is corrupt: header length ${
        new DataView(bytes.buffer).getUint32(0, true)
      } exceeds the file size of 20 bytes${fix}`,
      `header length ${
        new DataView(bytes.buffer).getUint32(0, true)
      } exceeds the file size of 20 bytes`,
    );
    // A state that parses, but to no object.
    const { tensors, metadata } = decodeSafetensors(bytes);
    for (const text of ["null", "[3]", "7"]) {
      await Deno.writeFile(
        `${dir}/odd`,
        encodeSafetensors(tensors, { ...metadata, state: text }),
      );
      await refused(
        `${dir}/odd`,
        `Checkpoint ${dir}/odd is corrupt: its state is not a JSON object${fix}`,
        "its state is not a JSON object",
      );
    }
    // An object whose data (the batch order's state) is null or a list:
    // "object" to typeof, read off nothing by a resume.
    const saved = JSON.parse(metadata!.state);
    for (const data of [null, [1]]) {
      await Deno.writeFile(
        `${dir}/odd`,
        encodeSafetensors(tensors, {
          ...metadata,
          state: JSON.stringify({ ...saved, data }),
        }),
      );
      await refused(
        `${dir}/odd`,
        `Checkpoint ${dir}/odd is corrupt: its state lacks step, optimizerStep, data or prng${fix}`,
        "its state lacks step, optimizerStep, data or prng",
      );
    }
    await Deno.writeFile(
      `${dir}/odd`,
      encodeSafetensors(tensors, { ...metadata, state: "{step" }),
    );
    await refused(
      `${dir}/odd`,
      `Checkpoint ${dir}/odd is corrupt: its state is not JSON${fix}`,
      "its state is not JSON",
    );
    // Not a checkpoint: weights alone, and a file that is no safetensors.
    await Deno.writeFile(
      `${dir}/weights`,
      encodeSafetensors(
        new Map([["w", { shape: [1], data: new Float32Array(1) }]]),
      ),
    );
    await refused(
      `${dir}/weights`,
      `${dir}/weights is not a training checkpoint (format undefined, expected d3pm-checkpoint-v1)`,
      "no d3pm-checkpoint-v1 state in its header",
    );
    await Deno.writeTextFile(`${dir}/notes.txt`, "not a checkpoint at all");
    const e = await assertRejects(
      () => readCheckpointState(`${dir}/notes.txt`),
      CheckpointError,
      `Checkpoint ${dir}/notes.txt is corrupt: header length `,
    );
    assertEquals(e.message.endsWith(fix), true);
    // A folder is never opened as one.
    await Deno.mkdir(`${dir}/folder`);
    await refused(
      `${dir}/folder`,
      `Checkpoint ${dir}/folder is corrupt: it is not a regular file (a folder, a FIFO or a device)${fix}`,
      "it is not a regular file (a folder, a FIFO or a device)",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// The mutation pass of docs/testing.md (☾) found these edges untested.

const STATE = {
  step: 2,
  optimizerStep: 2,
  data: { seed: 0, epoch: 0, batch: 2 },
  prng: [1, 2, 3, 4],
  config: {},
};

// A checkpoint file of these tensors and this state, written by hand.
function checkpointFile(
  names: string[],
  state: Record<string, unknown> = STATE,
): Uint8Array {
  return encodeSafetensors(
    new Map(names.map((n) => [n, { shape: [1], data: Float32Array.of(1) }])),
    { format: "d3pm-checkpoint-v1", state: JSON.stringify(state) },
  );
}

Deno.test("loadCheckpoint() takes engine spans from step 0 to the checkpoint's own step, and refuses -1", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ck`;
  try {
    const engines = [{ engine: "A", fromStep: 0 }, {
      engine: "B",
      fromStep: 2,
    }];
    await Deno.writeFile(path, checkpointFile([], { ...STATE, engines }));
    assertEquals((await loadCheckpoint(path)).state.engines, engines);
    assertEquals((await readCheckpointState(path)).engines, engines);
    await Deno.writeFile(
      path,
      checkpointFile([], {
        ...STATE,
        engines: [{ engine: "A", fromStep: -1 }],
      }),
    );
    await assertRejects(
      () => loadCheckpoint(path),
      CheckpointError,
      "its state's engines is not a list of {engine, fromStep ≤ 2}",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// `groups[prefix]` found Object.prototype's members: a tensor named
// `constructor/x` threw "TypeError: group.set is not a function".
Deno.test("loadCheckpoint() refuses a tensor outside its four groups by name, Object's own members included", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ck`;
  try {
    for (
      const name of [
        "constructor/x",
        "toString/x",
        "__proto__/x",
        "hasOwnProperty/x",
        "x",
        "/x",
        "adam/x",
      ]
    ) {
      await Deno.writeFile(path, checkpointFile([name]));
      await assertRejects(
        () => loadCheckpoint(path),
        CheckpointError,
        `Checkpoint ${path} has an unknown tensor ${name}`,
      );
    }
    // Each group takes what follows its first slash.
    await Deno.writeFile(
      path,
      checkpointFile(["model/a/b", "ema/c", "adam.m/a/b", "adam.v/a/b"]),
    );
    const ck = await loadCheckpoint(path);
    assertEquals(
      [ck.model, ck.ema, ck.adamM, ck.adamV].map((m) => [...m.keys()]),
      [["a/b"], ["c"], ["a/b"], ["a/b"]],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadCheckpoint() without a bound refuses a file past 8 GiB unread, and says why another file cannot be read in one line", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ck`;
  try {
    // A file of 16 bytes that Deno.stat reports as 8 GiB + 1: a bound set
    // higher reads its 16 bytes (and finds them corrupt), never 8 GiB.
    await Deno.writeFile(path, new Uint8Array(16));
    const stat = Deno.stat;
    (Deno as { stat: unknown }).stat = async (p: string | URL) =>
      p === path
        ? { ...(await stat(p)), size: 8 * 1024 ** 3 + 1 }
        : await stat(p);
    try {
      await assertRejects(
        () => loadCheckpoint(path),
        CheckpointError,
        `Cannot read ${path}: it is larger than the 8.0 GiB a training checkpoint may be; restore it`,
      );
    } finally {
      (Deno as { stat: unknown }).stat = stat;
    }
    // A path through a regular file: neither absent nor refused by size.
    const e = await assertRejects(
      () => loadCheckpoint(`${path}/x`),
      CheckpointError,
      `Cannot read checkpoint ${path}/x: NotADirectory: Not a directory`,
    );
    assertEquals(e.message.split("\n").length, 1);
    assert(e.detail.startsWith("NotADirectory: Not a directory"), e.detail);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkpointBytes() is 1 MiB plus four float32 copies of each weight with an EMA, three without, and each tensor's 256 + 2 · name bytes", () => {
  const w = new Map([["w", { shape: [1000, 100] }], ["bias", { shape: [7] }]]);
  const each = (copies: number) =>
    copies * (4 * 100_000 + 256 + 2) + copies * (4 * 7 + 256 + 8);
  assertEquals(checkpointBytes(w, true), 1_048_576 + each(4));
  assertEquals(checkpointBytes(w, false), 1_048_576 + each(3));
});

Deno.test("loadCheckpoint() and readCheckpointState() refuse a state without an integer optimizerStep, a prng list or a string engine", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/ck`;
  try {
    for (
      const [state, why] of [
        [{ ...STATE, optimizerStep: "2" }, "lacks step, optimizerStep"],
        [{ ...STATE, optimizerStep: undefined }, "lacks step, optimizerStep"],
        [{ ...STATE, prng: "1,2,3,4" }, "lacks step, optimizerStep"],
        [
          { ...STATE, engines: [{ engine: 7, fromStep: 0 }] },
          "its state's engines is not a list",
        ],
      ] as const
    ) {
      await Deno.writeFile(path, checkpointFile([], state));
      await assertRejects(() => loadCheckpoint(path), CheckpointError, why);
      await assertRejects(
        () => readCheckpointState(path),
        CheckpointError,
        why,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
