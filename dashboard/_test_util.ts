// Helpers of the dashboard's tests: fake run folders, a fake model loader,
// and reading server-sent events from a response.
import { ByteTokenizer } from "@d3pm/tokenizer";
import {
  type Contestant,
  type ContestantProcess,
  resolveConfig,
} from "@d3pm/experiment";
import type { LoadedModel, ModelLoader } from "./generation.ts";
import { sleep } from "./follow.ts";

/** A run folder with a configuration, trained models and optional extras. */
export async function fakeRun(
  dir: string,
  options: {
    models?: string;
    seeds?: number;
    results?: boolean;
    lockPid?: number;
  } = {},
): Promise<void> {
  const models = options.models ?? "ar,d3pm";
  const seeds = options.seeds ?? 1;
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(
    `${dir}/config.json`,
    // A whole resolved configuration, as `deno task experiment` writes it
    // (a run folder refuses a partial one).
    JSON.stringify(resolveConfig({
      preset: "micro",
      models,
      seeds,
      steps: 4,
      warmup: 1,
      "checkpoint-every": 2,
      "block-length": 8,
      "n-layer": 1,
      "d-model": 8,
      "n-head": 1,
      tokenizer: "byte",
      out: dir,
    })),
  );
  for (let s = 0; s < seeds; s++) {
    for (const kind of models.split(",")) {
      await Deno.mkdir(`${dir}/seed-${s}/${kind}`, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/seed-${s}/${kind}/model.safetensors`,
        "weights",
      );
      await Deno.writeTextFile(`${dir}/seed-${s}/${kind}/process.json`, "{}");
      await Deno.writeTextFile(`${dir}/seed-${s}/${kind}/config.json`, "{}");
    }
  }
  await Deno.writeTextFile(
    `${dir}/metrics.jsonl`,
    '{"model":"ar","seed":0,"step":1,"loss":5}\n{"model":"ar","seed":0,"step":2,"loss":4.5}\n',
  );
  if (options.results) {
    await Deno.writeTextFile(
      `${dir}/results.json`,
      JSON.stringify({
        command: "deno task experiment",
        results: [{
          model: "ar",
          seed: 0,
          test: { bpt: 3.5, bound: false },
          generation: { speed: { batchesPerSecond: 2 } },
        }],
      }),
    );
    await Deno.writeTextFile(
      `${dir}/report.md`,
      "# Report\n\n| a | b |\n| - | - |\n| 1 | 2 |\n",
    );
  }
  if (options.lockPid !== undefined) {
    await Deno.writeTextFile(`${dir}/.lock`, `${options.lockPid}\n`);
  }
}

/** A denoiser over bytes that reveals one position per step, `delayMs` apart. */
export function fakeLoader(
  delayMs = 5,
  length = 8,
): ModelLoader & { loads: number } {
  const MASK = 259;
  const contestant = {
    kind: "d3pm",
    network: "bidirectional",
    label: { short: "D3PM", title: "D3PM" },
    unmasking: { strategy: "ancestral", maskId: () => MASK, steps: () => 50 },
    generate: async (_p: unknown, _m: unknown, req: {
      length: number;
      steps?: number;
      prompt?: Int32Array;
      prefix?: Int32Array;
      onStep?: (
        s: {
          step: number;
          steps: number;
          tokens: Int32Array;
          forwardPasses: number;
        },
      ) => void;
    }) => {
      const row = req.prompt
        ? req.prompt.slice()
        : new Int32Array(req.length).fill(MASK);
      if (req.prefix) row.set(req.prefix);
      const steps = req.steps ?? 8;
      for (let s = 1; s <= steps; s++) {
        await sleep(delayMs);
        const i = row.indexOf(MASK);
        if (i >= 0) row[i] = 97 + (s % 26);
        if (s === steps) row.forEach((x, j) => x === MASK && (row[j] = 122));
        req.onStep?.({ step: s, steps, tokens: row.slice(), forwardPasses: s });
      }
      return { tokens: row, forwardPasses: steps };
    },
  } as unknown as Contestant;
  const loader = (() => {
    loader.loads++;
    const model: LoadedModel = {
      contestant,
      process: { toJSON: () => ({}) } as unknown as ContestantProcess,
      tokenizer: new ByteTokenizer(),
      length,
      placed: {
        model: { timeConditioned: false } as never,
        engine: "fake",
        dispose() {},
      },
    };
    return Promise.resolve(model);
  }) as unknown as ModelLoader & { loads: number };
  loader.loads = 0;
  return loader;
}

/** One event of a server-sent event stream. */
export type StreamEvent = { event: string; data: string; id?: string };

/**
 * A stream's events as they come: `until(ok)` reads on until `ok` holds over
 * every event read so far (or `timeoutMs` passes) and gives them all, so a
 * test can act once the server has sent something (a log's end, a frame)
 * and then read on; `cancel()` ends the reading. `until` also returns when
 * the stream ends (`ended`).
 */
export function eventReader(res: Response): {
  until: (
    ok: (events: StreamEvent[]) => boolean,
    timeoutMs?: number,
  ) => Promise<StreamEvent[]>;
  cancel: () => Promise<void>;
  /** Whether the stream ended (its body closed by the server). */
  readonly ended: boolean;
} {
  const events: StreamEvent[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "", ended = false;
  // A read raced against a deadline and lost is still pending: the next
  // call takes it over rather than starting a second read.
  let pending: Promise<ReadableStreamReadResult<string>> | undefined;
  const until = async (
    ok: (events: StreamEvent[]) => boolean,
    timeoutMs = 10_000,
  ) => {
    const deadline = Date.now() + timeoutMs;
    while (!ok(events) && !ended && Date.now() < deadline) {
      const stop = new AbortController();
      pending ??= reader.read();
      const timer = sleep(Math.max(1, deadline - Date.now()), stop.signal)
        .then(() => undefined);
      const r = await Promise.race([pending, timer]);
      stop.abort();
      if (!r) break; // the deadline: the read stays pending
      pending = undefined;
      if (r.done) {
        ended = true;
        break;
      }
      buf += r.value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const e: StreamEvent = { event: "message", data: "" };
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event: ")) e.event = line.slice(7);
          else if (line.startsWith("id: ")) e.id = line.slice(4);
          else if (line.startsWith("data: ")) data.push(line.slice(6));
        }
        if (!data.length) continue; // a keep-alive comment
        e.data = data.join("\n");
        events.push(e);
      }
    }
    return events;
  };
  return {
    until,
    cancel: () => reader.cancel().catch(() => {}),
    get ended() {
      return ended;
    },
  };
}

/** The events of a server-sent event stream, read until `until` says stop. */
export async function readEvents(
  res: Response,
  until: (events: StreamEvent[]) => boolean,
  timeoutMs = 10_000,
): Promise<StreamEvent[]> {
  const reader = eventReader(res);
  try {
    return await reader.until(until, timeoutMs);
  } finally {
    await reader.cancel();
  }
}

/**
 * Waits until `ok()` holds, looking every 5 ms; past `timeoutMs` it fails
 * naming `what`. Tests order their steps by state the server shows (a
 * request queued, a generation cancelled), never by a guess of how long a
 * step takes: a fixed sleep lost that race on a loaded machine.
 */
export async function until(
  ok: () => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) {
      throw new Error(`not within ${timeoutMs / 1000} s: ${what}`);
    }
    await sleep(5);
  }
}

/** Every file under a folder with its bytes, to show nothing was written. */
export async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for await (const e of Deno.readDir(d)) {
      const p = `${d}/${e.name}`;
      if (e.isDirectory) await walk(p);
      else if (e.isFile) out.set(p, await Deno.readTextFile(p));
      else out.set(p, "(link)");
    }
  };
  await walk(dir);
  return out;
}
