/**
 * `deno task evaluate`: a trained model of a run folder (finished, or
 * imported) scored on the test split again (`@d3pm/experiment`'s
 * `scoreTest`); prints one JSON line.
 *
 * @module
 */
import { initBackend } from "@d3pm/backend";
import { readCommandLine, runCli } from "@d3pm/cli";
import { scoreTest } from "@d3pm/experiment";
import * as tf from "@tensorflow/tfjs";

const OPTIONS = {
  run: {
    kind: "string",
    value: "DIR",
    default: "runs/latest",
    help: "the run folder",
  },
  model: {
    kind: "string",
    value: "NAME",
    default: "ar",
    help: "the contestant: ar, d3pm, mlm (one the run trained)",
  },
  seed: { kind: "integer", min: 0, default: 0, help: "which seed's model" },
  blocks: {
    kind: "integer",
    min: 0,
    help: "test blocks (0: all; default: the run's --eval-blocks)",
  },
  backend: {
    kind: "choice",
    choices: ["auto", "tensorflow", "webgpu", "blas", "wasm", "cpu"],
    default: "auto",
    help: "tfjs backend",
  },
  engine: {
    kind: "choice",
    choices: ["tfjs", "cpu", "webgpu", "auto"],
    default: "tfjs",
    help:
      "where scoring runs: tfjs (on --backend), cpu (the fused plan on the CPU kernels), webgpu (the fused engine) or auto (webgpu on a real GPU, else cpu)",
  },
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task evaluate",
      summary:
        `Scores a trained model of a run folder on the test split, as the run's
evaluation did: the exact NLL of a causal model, the continuous bound of a
denoiser. Prints one JSON line with NLL, BPT, PPL and bits per byte.`,
      options: OPTIONS,
    });
    await initBackend({ prefer: values.backend });
    const score = await scoreTest(values.run, {
      model: values.model,
      seed: values.seed,
      blocks: values.blocks,
      engine: values.engine,
      log: (line) => console.error(line),
    });
    console.log(JSON.stringify({ run: values.run, ...score }));
    tf.disposeVariables();
  });
}
