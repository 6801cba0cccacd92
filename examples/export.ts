/**
 * `deno task export`: a trained model of a finished run as a Hugging Face
 * directory that transformers loads (`@d3pm/hf`'s `exportRun`).
 *
 * @module
 */
import { readCommandLine, runCli } from "@d3pm/cli";
import { contestants } from "@d3pm/experiment";
import { exportRun } from "@d3pm/hf";
import {
  FORCE_OPTION,
  RUN_OPTION,
  SEED_OPTION,
  TRAINED_MODEL_OPTION,
} from "./_tool_options.ts";

// A tfjs-only layout (block diffusion's block attention) has no exported form.
const exportable = contestants().filter((c) => !c.tfjsOnly);
const tfjsOnly = contestants().filter((c) => c.tfjsOnly);

const OPTIONS = {
  run: RUN_OPTION,
  seed: SEED_OPTION,
  model: {
    ...TRAINED_MODEL_OPTION,
    help: `the contestant: ${
      exportable.map((c) => c.kind).join(", ")
    } (one the run trained)${
      tfjsOnly.map((c) => `; not ${c.kind}: ${c.tfjsOnly}`).join("")
    }`,
  },
  to: {
    kind: "string",
    value: "OUT",
    required: true,
    help: "the directory to write (refused when it exists, unless --force)",
  },
  weights: {
    kind: "choice",
    choices: ["last", "best", "ema"],
    help:
      "the last step's weights, the best validation's (--keep best runs), or the EMA (--ema-decay runs); default: those the run evaluated",
  },
  force: FORCE_OPTION,
} as const;

if (import.meta.main) {
  await runCli(async () => {
    const { values } = readCommandLine(Deno.args, {
      command: "deno task export",
      summary: `Writes a trained model of a run as a Hugging Face directory:
model.safetensors, config.json, generation_config.json, the tokenizer files
and a model card. A causal model loads as GPT2LMHeadModel (learned
positions) or GPTNeoXForCausalLM (rotary); a denoiser (d3pm, mlm) as
D3PMForMaskedLM from modeling_d3pm.py, with trust_remote_code=True.`,
      options: OPTIONS,
    });
    const out = await exportRun(values);
    console.log(
      `${out.dir}: ${out.architecture} (${out.weights}); ${
        out.files.join(", ")
      }`,
    );
  });
}
