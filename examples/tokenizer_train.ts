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

// Usage errors exit 2, failures while working 1; never a stack trace.
function fail(message: string, code = 2): never {
  console.error(`error: ${message.split("\n")[0]}`);
  Deno.exit(code);
}

// Refuse an --out that cannot become a file, before the (long) training.
async function checkOut(out: string): Promise<void> {
  const accepted = "expected the path of a JSON file to write";
  if (out === "" || out.endsWith("/")) {
    fail(`--out ${JSON.stringify(out)} is not a file path; ${accepted}`);
  }
  const isDir = async (path: string) =>
    await Deno.stat(path).then((i) => i.isDirectory, () => undefined);
  if (await isDir(out)) {
    fail(
      `--out ${out} is a directory; ${accepted}, such as ${out}/bpe.json`,
    );
  }
  const parent = out.includes("/") ? out.slice(0, out.lastIndexOf("/")) : ".";
  if (parent !== "" && await isDir(parent) === false) {
    fail(`--out ${out} is inside ${parent}, which is a file; ${accepted}`);
  }
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
// Counts the invalid sequences the decoder replaces by U+FFFD: those it
// produced, less the U+FFFD (EF BF BD) already in the input.
function* chunks(
  bytes: Uint8Array,
  invalid: { count: number },
): Generator<string> {
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  const step = 1 << 20;
  const count = (text: string) => {
    for (
      let i = text.indexOf("\uFFFD");
      i >= 0;
      i = text.indexOf("\uFFFD", i + 1)
    ) {
      invalid.count++;
    }
  };
  for (let at = 0; at < bytes.length; at += step) {
    const text = decoder.decode(bytes.subarray(at, at + step), {
      stream: true,
    });
    count(text);
    yield text;
  }
  const rest = decoder.decode();
  count(rest);
  yield rest;
  for (let i = bytes.indexOf(0xef); i >= 0; i = bytes.indexOf(0xef, i + 1)) {
    if (bytes[i + 1] === 0xbf && bytes[i + 2] === 0xbd) invalid.count--;
  }
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
  if (args.input === "") fail("--input needs a path; expected a text file");
  const input = args.input ?? DEFAULT_INPUT;
  const out = args.out ?? `runs/tokenizer/wikitext2-bpe-${vocabSize}.json`;
  await checkOut(out);

  const bytes = await readBytes(input);
  const start = performance.now();
  const invalid = { count: 0 };
  const tokenizer = trainBpe(chunks(bytes, invalid), {
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
  if (invalid.count > 0) {
    console.error(
      `warning: --input ${inputName} is not valid UTF-8: ${invalid.count} invalid byte sequence(s) were replaced by U+FFFD and trained on as such`,
    );
  }
  try {
    await saveBpeTokenizer(tokenizer, out, {
      meta: {
        input: inputName,
        vocabSize,
        minFrequency,
        trainSeconds: Number(seconds.toFixed(2)),
      },
    });
  } catch (e) {
    fail(`cannot write --out ${out}: ${(e as Error).message}`, 1);
  }
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

if (import.meta.main) {
  await main().catch((e) =>
    fail(e instanceof Error ? e.message : String(e), 1)
  );
}
