/**
 * `deno task tokenizer:train`: trains the byte-level BPE of the default
 * experiment preset (4096 ids, WikiText-2 train) or any other size and
 * corpus, and writes it as versioned JSON (`loadBpeTokenizer` reads it).
 *
 * @module
 */
import { readCommandLine, runCli, UsageError } from "@d3pm/cli";
import { BPE_FORMAT, saveBpeTokenizer, trainBpe } from "@d3pm/tokenizer";
import {
  fileAbove,
  pathExists,
  readBounded,
  readJsonBounded,
} from "@d3pm/core";

const SUMMARY =
  `Trains a byte-level BPE (GPT-2 pre-tokenization, deterministic: ties go to the
smaller pair of ids) and writes it as JSON (format "${BPE_FORMAT}", version 1).
The default is the tokenizer of the default experiment preset: 4096 ids (4092
base ids, then bos, eos, pad, mask) trained on the committed WikiText-2 train
split.`;

const OPTIONS = {
  vocab: {
    kind: "integer",
    min: 260,
    default: 4096,
    help:
      "vocabulary size, special tokens included (256 bytes + 4 special tokens at least)",
  },
  out: {
    kind: "string",
    value: "PATH",
    help:
      "where to write the JSON; an existing file is replaced only when it is a tokenizer this command wrote; a path in a run folder or in .cache/tokenizers/ is refused (default runs/tokenizer/wikitext2-bpe-<N>.json)",
  },
  input: {
    kind: "string",
    value: "PATH",
    help:
      "training text, plain or .gz (default data/corpus/wikitext-2/wiki.train.tokens.gz)",
  },
  minFrequency: {
    kind: "integer",
    min: 1,
    default: 2,
    help: "stop when the best pair occurs fewer times",
  },
} as const;

const DEFAULT_INPUT = new URL(
  "../data/corpus/wikitext-2/wiki.train.tokens.gz",
  import.meta.url,
);

// A bad command line or input (exit 2).
function fail(message: string): never {
  throw new UsageError(message);
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
  // Any folder above may be the file (`F/sub/bpe.json`), not only the parent.
  const file = await fileAbove(out);
  if (file !== undefined) {
    fail(`--out ${out} is inside ${file}, which is a file; ${accepted}`);
  }
  await checkOthers(out);
  await checkReplaced(out, accepted);
}

// A run folder's files and the experiment's tokenizer cache are written by
// the experiment alone, whether or not --out exists yet: a tokenizer put in a
// run folder (or its cache) is not the one its models were trained on.
async function checkOthers(out: string): Promise<void> {
  const folder = out.includes("/") ? out.slice(0, out.lastIndexOf("/")) : ".";
  const keep = "choose another --out";
  if (await pathExists(`${folder}/config.json`)) {
    fail(
      `--out ${out} is in a run folder (${folder} holds a config.json): its tokenizer is the one its models were trained on, written by the experiment; ${keep}`,
    );
  }
  const real = await Deno.realPath(folder).catch(() => folder);
  if (/(^|\/)\.cache\/tokenizers$/.test(real)) {
    fail(
      `--out ${out} is in the experiment's tokenizer cache (.cache/tokenizers/), which the experiment writes and checks itself; ${keep}`,
    );
  }
}

/** The most bytes of an existing --out read to see whether it is a tokenizer. */
const MAX_REPLACED = 64 << 20;

// An existing --out is replaced only when it is a tokenizer this command
// wrote: a user's file (or the --input itself) was overwritten, and a link
// was replaced by a file, with no word; so were a run's tokenizer.json (then
// evaluate refused the run) and the experiment's cached BPE (which a later
// experiment then trained with), both "d3pm-bpe" files as well.
async function checkReplaced(out: string, accepted: string): Promise<void> {
  const info = await Deno.lstat(out).catch(() => undefined);
  if (info === undefined) return;
  if (info.isSymlink) {
    fail(
      `--out ${out} is a symbolic link (writing would replace the link, not its file); ${accepted}: give the file's own path`,
    );
  }
  const file = await readJsonBounded(out, {
    limit: MAX_REPLACED,
    what: "tokenizer",
  }).then((j) => j as { format?: unknown; meta?: unknown } | null, () => null);
  const why = notOurs(file);
  if (why !== undefined) {
    fail(
      `--out ${out} exists and is not a tokenizer this command wrote (${why}), so it is kept; choose another --out, or remove it first`,
    );
  }
}

/** What {@linkcode saveBpeTokenizer}'s `meta.command` is for this command's files. */
const COMMAND = "tokenizer:train";

// Why `file` (the parsed --out) is not this command's tokenizer, or
// undefined when it is: "d3pm-bpe" with this command's meta (`command`, or
// the fields it wrote before it wrote `command`), outside a run folder.
function notOurs(
  file: { format?: unknown; meta?: unknown } | null,
): string | undefined {
  if (file?.format !== BPE_FORMAT) {
    return `a JSON file with "format": "${BPE_FORMAT}" and "meta": {"command": "${COMMAND}"}`;
  }
  const meta = (file.meta ?? {}) as Record<string, unknown>;
  if (meta.command === COMMAND) return undefined;
  const before = ["input", "vocabSize", "minFrequency", "trainSeconds"];
  if (meta.command === undefined && before.every((k) => k in meta)) {
    return undefined;
  }
  return meta.command === "experiment"
    ? `it is the experiment's cached tokenizer`
    : `it is a "${BPE_FORMAT}" tokenizer without "meta": {"command": "${COMMAND}"}, such as a run's`;
}

/** The most text (after gunzip) a tokenizer is trained on: WikiText-103's train split is 540 MB. */
const MAX_INPUT = 2 ** 30;

// The input's bytes (inflated, for .gz): a regular file only, and at most
// MAX_INPUT bytes of text, so a gzip bomb or a device fails in one line.
async function readBytes(path: string | URL): Promise<Uint8Array> {
  const gz = String(path).endsWith(".gz");
  try {
    return await readBounded(path, {
      limit: MAX_INPUT,
      what: "training text",
      gunzip: gz,
    });
  } catch (e) {
    const message = (e as Error).message.replace(/^Cannot read \S+: /, "");
    const verb = gz && !(e instanceof Deno.errors.NotFound) ? "gunzip" : "read";
    fail(`cannot ${verb} --input ${path}: ${message}`);
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
  const { values } = readCommandLine(Deno.args, {
    command: "deno task tokenizer:train",
    summary: SUMMARY,
    options: OPTIONS,
  });
  const { vocab: vocabSize, minFrequency } = values;
  const input = values.input ?? DEFAULT_INPUT;
  const out = values.out ?? `runs/tokenizer/wikitext2-bpe-${vocabSize}.json`;
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
        command: COMMAND,
        input: inputName,
        vocabSize,
        minFrequency,
        trainSeconds: Number(seconds.toFixed(2)),
      },
    });
  } catch (e) {
    // Failing while working: exit 1.
    throw new Error(`cannot write --out ${out}: ${(e as Error).message}`);
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

if (import.meta.main) await runCli(main, { usageExit: 2 });
