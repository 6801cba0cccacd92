/**
 * `deno task bench:tokenizer`: GPT-2 encoding speed of this package against
 * npm `gpt-tokenizer` and `js-tiktoken` on the WikiText-2 raw test split, in
 * one process (warm-up, then repetitions taken in turn, medians); the time
 * to train an 8192 BPE on WikiText-2 train; and the peak memory of streaming
 * a large file (WikiText-2 train repeated) through `encodeStream` in a child
 * process. Prints one JSON line on stdout; progress goes to stderr.
 *
 * @module
 */
import { fromFileUrl } from "@d3pm/core";
import { encode as gptTokenizerEncode } from "gpt-tokenizer/encoding/r50k_base";
import { Tiktoken } from "js-tiktoken/lite";
import gpt2Ranks from "js-tiktoken/ranks/gpt2";
import { BpeTokenizer, loadGpt2Tokenizer, trainBpe } from "@d3pm/tokenizer";
import { readCommandLine } from "@d3pm/cli";

const USAGE = {
  command: "deno task bench:tokenizer",
  summary:
    `Encodes the WikiText-2 raw test split with this package's GPT-2 tokenizer,
gpt-tokenizer and js-tiktoken (same process, warm-up, medians), checks that
all three give the same ids, times training an 8192 BPE on WikiText-2 train,
and streams a large file through encodeStream in a child process to measure
its peak memory. Prints one JSON line.`,
  options: {
    reps: {
      kind: "integer",
      min: 1,
      default: 7,
      help: "timed repetitions per encoder",
    },
    trainReps: {
      kind: "integer",
      min: 1,
      default: 3,
      help: "timed BPE trainings",
    },
    streamMb: {
      kind: "integer",
      min: 0,
      default: 500,
      help: "size of the streamed file in MB; 0 skips it",
    },
  },
} as const;

const RAW_TEST = new URL(
  "../data/corpus/wikitext-2-raw/wiki.test.raw.gz",
  import.meta.url,
);
const TRAIN = new URL(
  "../data/corpus/wikitext-2/wiki.train.tokens.gz",
  import.meta.url,
);

async function gunzipText(url: URL): Promise<string> {
  const file = await Deno.open(url);
  return await new Response(
    file.readable.pipeThrough(new DecompressionStream("gzip")),
  ).text();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Peak resident memory of this process in MB (Linux), else current RSS. */
function peakRssMb(): number {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kb = /VmHWM:\s+(\d+) kB/.exec(status);
    if (kb) return Number(kb[1]) / 1024;
  } catch {
    // not Linux
  }
  return Deno.memoryUsage().rss / 2 ** 20;
}

const round = (x: number, digits = 0) => Number(x.toFixed(digits));

function sameIds(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// Child: stream `path` through encodeStream and report tokens and memory.
async function streamChild(path: string): Promise<void> {
  const gpt2 = await loadGpt2Tokenizer();
  const file = await Deno.open(path);
  const start = performance.now();
  let tokens = 0;
  const chunks = file.readable.pipeThrough(new TextDecoderStream());
  for await (const ids of gpt2.encodeStream(chunks)) tokens += ids.length;
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ tokens, seconds, peak_rss_mb: peakRssMb() }));
}

async function streamBench(mb: number, train: string): Promise<{
  stream_mb: number;
  stream_tokens: number;
  stream_tokens_per_s: number;
  stream_peak_rss_mb: number;
}> {
  const path = await Deno.makeTempFile({ suffix: ".txt" });
  try {
    const bytes = new TextEncoder().encode(train);
    const file = await Deno.open(path, { write: true, truncate: true });
    let written = 0;
    while (written < mb * 1e6) {
      await file.write(bytes);
      written += bytes.length;
    }
    file.close();
    console.error(`streaming ${(written / 1e6).toFixed(0)} MB in a child…`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        fromFileUrl(new URL(import.meta.url)),
        "--stream-child",
        path,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!out.success) throw new Error("the streaming child failed");
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    return {
      stream_mb: round(written / 1e6),
      stream_tokens: r.tokens,
      stream_tokens_per_s: round(r.tokens / r.seconds),
      stream_peak_rss_mb: round(r.peak_rss_mb),
    };
  } finally {
    await Deno.remove(path);
  }
}

async function main(): Promise<void> {
  // The hidden child mode of the streaming measurement.
  if (Deno.args[0] === "--stream-child") {
    return await streamChild(String(Deno.args[1]));
  }
  const { reps, trainReps, streamMb } = readCommandLine(Deno.args, USAGE, {
    usageExit: 2,
  }).values;

  const text = await gunzipText(RAW_TEST);
  const train = await gunzipText(TRAIN);
  const ours = await loadGpt2Tokenizer();
  const tiktoken = new Tiktoken(gpt2Ranks);
  const encoders: [string, (s: string) => ArrayLike<number>][] = [
    ["ours", (s) => ours.encode(s)],
    [
      "gpt_tokenizer",
      (s) => gptTokenizerEncode(s, { disallowedSpecial: new Set() }),
    ],
    ["js_tiktoken", (s) => tiktoken.encode(s, [], [])],
  ];

  // Correctness first (this also warms every encoder up once).
  const results = encoders.map(([, f]) => f(text));
  const idsIdentical = results.every((r) => sameIds(r, results[0]));
  const tokens = results[0].length;
  for (const [, f] of encoders) f(text); // second warm-up

  const times = new Map<string, number[]>(encoders.map(([n]) => [n, []]));
  const cold: number[] = [];
  for (let r = 0; r < reps; r++) {
    for (const [name, f] of encoders) {
      const t = performance.now();
      f(text);
      times.get(name)!.push(performance.now() - t);
    }
    // Ours with an empty piece cache, as on a first encode.
    const fresh = new BpeTokenizer(ours.vocabulary, { id: ours.id });
    const t = performance.now();
    fresh.encode(text);
    cold.push(performance.now() - t);
    console.error(`rep ${r + 1}/${reps}`);
  }
  const rate = (ms: number[]) => round(tokens / (median(ms) / 1000));
  const ourRate = rate(times.get("ours")!);
  const gptRate = rate(times.get("gpt_tokenizer")!);
  const tikRate = rate(times.get("js_tiktoken")!);

  const trainTimes: number[] = [];
  let trainedSize = 0;
  for (let r = 0; r < trainReps; r++) {
    const t = performance.now();
    trainedSize = trainBpe(train, { vocabSize: 8192 }).vocabSize;
    trainTimes.push((performance.now() - t) / 1000);
  }

  const stream = streamMb > 0 ? await streamBench(streamMb, train) : {};

  console.log(JSON.stringify({
    tokens,
    ours_tokens_per_s: ourRate,
    gpt_tokenizer_tokens_per_s: gptRate,
    js_tiktoken_tokens_per_s: tikRate,
    ratio_vs_fastest_peer: round(ourRate / Math.max(gptRate, tikRate), 2),
    ids_identical: idsIdentical,
    ours_cold_tokens_per_s: rate(cold),
    train_8192_seconds: round(median(trainTimes), 2),
    train_8192_vocab_size: trainedSize,
    peak_rss_mb: round(peakRssMb()),
    ...stream,
    reps,
  }));
}

if (import.meta.main) await main();
