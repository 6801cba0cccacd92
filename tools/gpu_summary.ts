// The figures of a tools/gpu_run.sh run, one line each, from its
// results.jsonl (every bench JSON line, tagged with its step):
//
//   deno run -A tools/gpu_summary.ts OUT_DIR/results.jsonl

type Line = Record<string, unknown> & { step?: string; bench?: string };

const path = Deno.args[0];
if (path === undefined) {
  console.error("usage: deno run -A tools/gpu_summary.ts results.jsonl");
  Deno.exit(2);
}
const lines: Line[] = [];
for (const text of Deno.readTextFileSync(path).split("\n")) {
  if (!text.startsWith("{")) continue;
  try {
    lines.push(JSON.parse(text));
  } catch {
    console.log(`unreadable line: ${text.slice(0, 80)}`);
  }
}

const num = (x: unknown, digits = 1) =>
  typeof x === "number"
    ? x.toLocaleString("en-US", { maximumFractionDigits: digits })
    : "?";

const attention = new Map<string, Line[]>();
// Two decimals on a GPU, four on a software adapter's 0.000x.
const tflopsDigits = (x: unknown) => typeof x === "number" && x < 0.1 ? 4 : 2;
// An AR line's decoding kernels: " (skinny matmul, split attention)" (lines
// before decodeAttention existed name the matmul only).
const decodeKernels = (l: Line) =>
  l.decodeMatmul
    ? ` (${l.decodeMatmul} matmul${
      l.decodeAttention ? `, ${l.decodeAttention} attention` : ""
    })`
    : "";
for (const l of lines) {
  const at = `${l.step ?? "?"}:`;
  switch (l.bench) {
    case "webgpu.adapter": {
      const features = (l.features as string[] | undefined) ?? [];
      const limits = (l.limits as Record<string, number> | undefined) ?? {};
      console.log(
        `${at} ${l.adapter} vendor ${l.vendor}; shader-f16 ${
          features.includes("shader-f16")
        }, timestamp-query ${
          features.includes("timestamp-query")
        }; max binding ${
          num((limits.maxStorageBufferBindingSize ?? 0) / 2 ** 20, 0)
        } MiB`,
      );
      break;
    }
    case "webgpu.step":
      console.log(
        `${at} step ${l.size}${
          l.engineKernels ? ` [${l.engineKernels} kernels]` : ""
        } (${l.nLayer} × d ${l.dModel}, MLP ${l.dMlp}, V ${l.vocab}, ${l.kind}${
          l.timeConditioning ? ", adaLN" : ""
        }) batch ${l.batch} × ${l.length}: ${
          num(l.tokensPerSecond, 0)
        } tokens/s, ${num(l.tflops, 3)} TFLOP/s (${
          num((l.flopsPerToken as number) / 1e6, 2)
        } MFLOP/token), ${
          num(l.msPerStep, 2)
        } ms/step; ${l.dispatchesPerStep} dispatches, ${l.commandBuffersPerStep} command buffer(s), ${l.syncsPerLoggedStep} sync(s) per logged step; ${l.memoryMiB} MiB`,
      );
      break;
    case "tfjs-webgpu.step":
      console.log(
        `${at} tfjs-webgpu ${l.size}: ${num(l.tokensPerSecond, 0)} tokens/s, ${
          num(l.tflops, 3)
        } TFLOP/s, ${l.kernelsPerStep} kernels/step`,
      );
      break;
    case "webgpu.profile": {
      const top = Object.entries(l.byFamily as Record<string, number>)
        .slice(0, 4).map(([k, ms]) => `${k} ${num(ms, 2)}`).join(", ");
      console.log(
        `${at} GPU ms per step ${num(l.gpuMsPerStep, 2)} (${top})`,
      );
      break;
    }
    case "webgpu.matmul":
      console.log(
        l.skipped
          ? `${at} matmul ${l.shape}: skipped (${l.skipped})`
          : `${at} matmul ${l.shape} ${l.m}×${l.n}×${l.k} tile ${l.tile}${
            l.kernel ? ` ${l.kernel} kernel` : ""
          }${l.dtype ? ` ${l.dtype}` : ""}: ${num(l.gflops, 0)} GFLOP/s`,
      );
      break;
    case "webgpu.generate":
      console.log(
        `${at} generate ${l.model}${decodeKernels(l)}${
          l.steps ? ` ${l.steps} steps` : ""
        } ${l.batch} × ${l.length}: ${num(l.batchesPerS, 3)} batches/s, ${
          num(l.tokensPerS, 0)
        } tokens/s, ${num(l.forwardPassesPerBatch)} passes/batch, ${
          num(l.msPerPass, 2)
        } ms/pass, ${l.syncsPerBatch} sync(s)/batch`,
      );
      break;
    case "webgpu.generate.profile": {
      const top = Object.entries(l.byFamily as Record<string, number>)
        .slice(0, 5).map(([k, ms]) =>
          `${k} ${num(ms / Math.max(1, l.forwardPasses as number), 3)}`
        ).join(", ");
      console.log(
        `${at} generate profile ${l.model}${decodeKernels(l)}${
          l.steps ? ` ${l.steps} steps` : ""
        } ${l.batch} × ${l.length}: GPU ms per pass ${
          num(l.gpuMsPerPass, 3)
        } of ${num(l.timedMsPerPass, 2)} timed, ${
          num(l.dispatchesPerPass)
        } dispatches/pass (${top})${
          l.badStamps ? `; ${l.badStamps} bad stamps` : ""
        }`,
      );
      break;
    }
    case "webgpu.attention": {
      // One line per kind, printed with its `all` line.
      if (l.skipped) {
        console.log(`${at} attention: skipped (${l.skipped})`);
        break;
      }
      // Lines of each attention set (tiled, wide) apart.
      const set = l.set ? ` (${l.set})` : "";
      const kind = `${l.step}:${l.kind}${set}`;
      if (l.kernel !== "all") {
        attention.set(kind, [...(attention.get(kind) ?? []), l]);
        break;
      }
      const each = (attention.get(kind) ?? []).map((k) =>
        `${k.kernel} ${num(k.ms, 3)} ms ${
          num(k.tflops, tflopsDigits(k.tflops))
        } TFLOP/s`
      ).join(", ");
      console.log(
        `${at} attention ${l.kind}${set} ${l.batch} × ${l.heads} heads × ${l.headDim}, T ${l.length}: ${each}; all ${
          num(l.ms, 3)
        } ms, ${
          num(l.modelTflops, tflopsDigits(l.modelTflops))
        } TFLOP/s at the model's FLOPs`,
      );
      break;
    }
    case "webgpu.generate.ratio":
      console.log(
        `${at} D3PM/AR batches/s ${
          JSON.stringify(l.d3pmOverAr)
        } (thesis ${l.thesisRatio})`,
      );
      break;
    default:
      console.log(`${at} ${JSON.stringify(l).slice(0, 160)}`);
  }
}
