/**
 * `deno task tokenizer:train`: trains the byte-level BPE of the default
 * experiment preset (4096 ids, WikiText-2 train) or any other size and
 * corpus, and writes it as versioned JSON (`loadBpeTokenizer` reads it).
 *
 * @module
 */
import { parseArgs } from "@std/cli";
import { saveBpeTokenizer, trainBpe } from "@d3pm/tokenizer";
import { gunzip } from "@d3pm/core";

const HELP = `deno task tokenizer:train [options]

Trains a byte-level BPE (GPT-2 pre-tokenization, deterministic: ties go to the
smaller pair of ids) and writes it as JSON (format "d3pm-bpe", version 1).
The default is the tokenizer of the default experiment preset: 4096 ids (4092
base ids, then bos, eos, pad, mask) trained on the committed WikiText-2 train
split.

Options:
  --vocab N           vocabulary size, special tokens included; ≥ 260 (default 4096)
  --out PATH          where to write the JSON (default runs/tokenizer/wikitext2-bpe-<N>.json)
  --input PATH        training text, plain or .gz (default data/corpus/wikitext-2/wiki.train.tokens.gz)
  --min-frequency N   stop when the best pair occurs fewer times (default 2)
  -h, --help          show this help
`;

const DEFAULT_INPUT = new URL(
  "../data/corpus/wikitext-2/wiki.train.tokens.gz",
  import.meta.url,
);

function fail(message: string): never {
  console.error(`error: ${message}`);
  Deno.exit(2);
}

async function readBytes(path: string | URL): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    fail(`cannot read --input ${path}: ${(e as Error).message}`);
  }
  if (!String(path).endsWith(".gz")) return bytes;
  try {
    return await gunzip(bytes);
  } catch (e) {
    fail(`cannot gunzip --input ${path}: ${(e as Error).message}`);
  }
}

// UTF-8 text in 1 MB pieces, so inputs larger than a JS string can be read.
function* chunks(bytes: Uint8Array): Generator<string> {
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const step = 1 << 20;
  for (let at = 0; at < bytes.length; at += step) {
    yield decoder.decode(bytes.subarray(at, at + step), { stream: true });
  }
  yield decoder.decode();
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args, {
    boolean: ["help"],
    string: ["vocab", "out", "input", "min-frequency"],
    alias: { h: "help" },
    unknown: (arg: string) => {
      fail(
        `unknown ${
          arg.startsWith("-") ? "option" : "argument"
        } ${arg}; accepted: --vocab, --out, --input, --min-frequency, --help`,
      );
    },
  });
  if (args.help) {
    console.log(HELP);
    return;
  }
  const vocabSize = Number(args.vocab ?? 4096);
  if (!Number.isInteger(vocabSize) || vocabSize < 260) {
    fail(
      `--vocab must be an integer ≥ 260 (256 bytes + 4 special tokens), got ${args.vocab}`,
    );
  }
  const minFrequency = Number(args["min-frequency"] ?? 2);
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    fail(
      `--min-frequency must be an integer ≥ 1, got ${args["min-frequency"]}`,
    );
  }
  const input = args.input ?? DEFAULT_INPUT;
  const out = args.out ?? `runs/tokenizer/wikitext2-bpe-${vocabSize}.json`;

  const bytes = await readBytes(input);
  const start = performance.now();
  const tokenizer = trainBpe(chunks(bytes), {
    vocabSize,
    minFrequency,
    onProgress: (done, wanted) =>
      Deno.stderr.writeSync(
        new TextEncoder().encode(`\rmerges ${done}/${wanted}`),
      ),
  });
  const seconds = (performance.now() - start) / 1000;
  console.error("");
  const inputName = input instanceof URL
    ? "data/corpus/wikitext-2/wiki.train.tokens.gz"
    : input;
  await saveBpeTokenizer(tokenizer, out, {
    meta: {
      input: inputName,
      vocabSize,
      minFrequency,
      trainSeconds: Number(seconds.toFixed(2)),
    },
  });
  if (tokenizer.vocabSize < vocabSize) {
    console.error(
      `note: the corpus ran out of pairs occurring ${minFrequency}+ times at ${tokenizer.vocabSize} ids`,
    );
  }
  console.log(
    `wrote ${out}: ${tokenizer.id}, ${tokenizer.vocabSize} ids (bos ${tokenizer.special.bos}, eos ${tokenizer.special.eos}, pad ${tokenizer.special.pad}, mask ${tokenizer.special.mask}), trained on ${inputName} in ${
      seconds.toFixed(2)
    } s`,
  );
}

if (import.meta.main) await main();
