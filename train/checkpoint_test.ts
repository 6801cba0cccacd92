import * as tf from "@tensorflow/tfjs";
import { assertEquals, assertRejects } from "@std/assert";
import { decodeSafetensors, encodeSafetensors } from "@d3pm/core";
import {
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
