/**
 * `deno task import`: a Hugging Face model directory on disk as a run
 * folder (`@d3pm/hf`'s `importCheckpoint`).
 *
 * @module
 */
import { readCommandLine, runCli } from "@d3pm/cli";
import { contestants } from "@d3pm/experiment";
import { importCheckpoint } from "@d3pm/hf";
import { FORCE_OPTION } from "./_tool_options.ts";

const OPTIONS = {
  from: {
    kind: "string",
    value: "HF_DIR",
    required: true,
    help:
      "a local Hugging Face model directory: config.json with model.safetensors or pytorch_model.bin",
  },
  to: {
    kind: "string",
    value: "DIR",
    required: true,
    help: "the run folder to write (refused when it exists, unless --force)",
  },
  tokenizer: {
    kind: "choice",
    choices: ["dir", "gpt2"],
    default: "dir",
    help:
      "read the tokenizer from --from's files, or use the project's copy of GPT-2's",
  },
  model: {
    kind: "choice",
    // The registered denoisers every engine runs (block diffusion's block
    // attention has no exported form to come back from).
    choices: contestants().filter((c) =>
      c.network === "bidirectional" && !c.tfjsOnly
    ).map((c) => c.kind),
    help:
      "the contestant of a D3PMForMaskedLM whose config.json lacks the d3pm_deno record (default d3pm); a causal checkpoint without it is the ar model",
  },
  force: FORCE_OPTION,
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task import",
      summary:
        `Reads a GPT-2-family checkpoint (GPT2LMHeadModel, GPT2Model; or this
project's own exports) from a local directory and writes it as a run folder
that deno task sample and deno task evaluate read. Nothing is downloaded; a
pickled pytorch_model.bin is read without running it.`,
      options: OPTIONS,
    });
    const start = performance.now();
    const out = await importCheckpoint({
      ...values,
      log: (line) => console.error(line),
    });
    const added = Object.keys(out.vocabulary.added);
    console.log(
      `${out.dir}: ${out.architecture} as the ${out.model} model of seed 0 (${out.config.nLayer} layers, width ${out.config.dModel}, ${out.config.vocabSize} ids${
        added.length ? `; rows added for ${added.join(", ")}` : ""
      }${
        out.droppedTensors.length
          ? `; ${out.droppedTensors.length} buffers dropped`
          : ""
      }) in ${((performance.now() - start) / 1000).toFixed(1)} s`,
    );
  });
}
