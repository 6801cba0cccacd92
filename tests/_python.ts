// The Python peer of the Hugging Face tests: the interpreter that can import
// torch, transformers and safetensors — D3PM_PYTHON, else the environment
// tools/setup_hf.sh makes (.cache/venv-hf), else python3 — or why there is none.
import { ROOT } from "./_run.ts";

/** The interpreter, or why the tests that need it cannot run. */
export interface PythonPeer {
  /** Its path, when it can import the three packages. */
  python?: string;
  /** Why not, when it cannot (one line). */
  missing?: string;
}

/** Find the interpreter once (a second or two: it imports torch). */
export function findPython(): PythonPeer {
  const candidates = [
    Deno.env.get("D3PM_PYTHON"),
    `${ROOT}.cache/venv-hf/bin/python`,
    "python3",
  ].filter((p): p is string => Boolean(p));
  const reasons: string[] = [];
  for (const python of candidates) {
    try {
      const out = new Deno.Command(python, {
        args: ["-c", "import torch, transformers, safetensors"],
        stdout: "null",
        stderr: "piped",
      }).outputSync();
      if (out.success) return { python };
      const last = new TextDecoder().decode(out.stderr).trim().split("\n")
        .at(-1);
      reasons.push(`${python}: ${last}`);
    } catch {
      reasons.push(`${python}: not found`);
    }
  }
  return {
    missing: `no python3 that imports torch, transformers and safetensors (${
      reasons.join("; ")
    }); run bash tools/setup_hf.sh`,
  };
}

/** Send the peer requests (see tests/python/hf_peer.py); its JSON replies, in order. */
export async function askPython(
  python: string,
  requests: Record<string, unknown>[],
): Promise<Record<string, unknown>[]> {
  // The requests, and the peer's own temporary folder (torch leaves a
  // torchinductor_<user> folder there), removed after it.
  const dir = await Deno.makeTempDir();
  const file = `${dir}/requests.json`;
  try {
    await Deno.writeTextFile(file, JSON.stringify(requests));
    const out = await new Deno.Command(python, {
      args: [`${ROOT}tests/python/hf_peer.py`, "run", file],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: {
        HF_HUB_OFFLINE: "1",
        TRANSFORMERS_OFFLINE: "1",
        HF_HUB_DISABLE_TELEMETRY: "1",
        TRANSFORMERS_VERBOSITY: "error",
        TOKENIZERS_PARALLELISM: "false",
        TMPDIR: dir,
      },
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) {
      throw new Error(
        `the Python peer failed on ${requests.map((r) => r.op)}: ${
          new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3)
            .join(" | ")
        }`,
      );
    }
    return JSON.parse(stdout.split("\n").at(-1)!);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Float32 little-endian values written by the peer. */
export async function readFloats(path: string): Promise<Float32Array> {
  const bytes = await Deno.readFile(path);
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}
