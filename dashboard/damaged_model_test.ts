// A model that cannot be loaded is a 503 in one line; only a file that is
// there but does not read as the model's (the loader's DamagedFileError) is
// called damaged — a file missing or another run's is said in its own words.
import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  dashboardHandler,
  GenerationService,
  inRunFolder,
  trainedModelLoader,
} from "./mod.ts";
import { fakeRun } from "./_test_util.ts";
import {
  contestantOf,
  DamagedFileError,
  loadTrained,
  RunFolder,
} from "@d3pm/experiment";
import { ByteTokenizer } from "@d3pm/tokenizer";

const DAMAGED =
  "Cannot load model ar of seed 0: the model's files are damaged: ";
const NOT_DAMAGED = "Cannot load model ar of seed 0: ";
// A safetensors header that promises more than the file holds, and the
// dashboard's answer to a model whose weights are that file.
const CUT_SHORT = new Uint8Array([200, 0, 0, 0, 0, 0, 0, 0, 123, 34]);
const CUT_SHORT_ANSWER =
  `${DAMAGED}Cannot read safetensors r/seed-0/ar/model.safetensors: header length 200 exceeds the file size of 10 bytes`;

async function setup() {
  const root = await Deno.realPath(await Deno.makeTempDir());
  await fakeRun(`${root}/r`, { models: "ar" });
  const handler = dashboardHandler({
    root,
    generation: new GenerationService(trainedModelLoader("tfjs")),
  }, { page: { html: "", js: "", css: "" } });
  const generate = async (): Promise<[number, string]> => {
    const r = await handler(
      new Request("http://127.0.0.1/api/generate", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ run: "r", model: "ar", seed: 0 }),
      }),
    );
    const error = (await r.json()).error as string;
    assert(!error.includes("\n") && !error.includes(root), error);
    return [r.status, error];
  };
  const get = async (path: string): Promise<[number, string]> => {
    const r = await handler(new Request(`http://127.0.0.1${path}`));
    const error = (await r.json()).error as string;
    assert(!error.includes("\n") && !error.includes(root), error);
    return [r.status, error];
  };
  const vocab = () => get("/api/run/vocab?run=r");
  const tokenize = () => get("/api/run/tokenize?run=r&text=hi");
  const unmasking = () => get("/api/run/unmasking?run=r&seed=0&model=ar");
  // The model's own process and config, as training writes them.
  const m = `${root}/r/seed-0/ar`;
  const run = JSON.parse(await Deno.readTextFile(`${root}/r/config.json`));
  const config = contestantOf("ar").modelConfig(
    run,
    new ByteTokenizer().vocabSize,
  );
  const whole = async () => {
    await Deno.writeTextFile(
      `${m}/process.json`,
      JSON.stringify({ kind: "autoregressive", start: 256 }),
    );
    await Deno.writeTextFile(`${m}/config.json`, JSON.stringify(config));
  };
  return {
    root,
    m,
    run,
    config,
    generate,
    vocab,
    tokenize,
    unmasking,
    whole,
  };
}

/** Expect a 503 whose error starts with `start`, then not `DAMAGED` unless it is. */
function refused([status, error]: [number, string], start: string): void {
  assertEquals(status, 503, error);
  assert(error.startsWith(start), error);
  if (!start.startsWith(DAMAGED)) assert(!error.startsWith(DAMAGED), error);
}

Deno.test("POST /api/generate of a model whose files are damaged (a process.json or config.json not JSON or not an object, a truncated model.safetensors) is a 503 in one line called damaged", async () => {
  const s = await setup();
  try {
    await Deno.writeTextFile(`${s.m}/process.json`, '{"kind": "autoregr');
    refused(
      await s.generate(),
      `${DAMAGED}r/seed-0/ar/process.json is not valid JSON (expected a process description): `,
    );
    await s.whole();
    await Deno.writeTextFile(`${s.m}/config.json`, "[1, 2]");
    refused(
      await s.generate(),
      `${DAMAGED}r/seed-0/ar/config.json is not a model configuration (expected a JSON object)`,
    );
    await s.whole();
    // A safetensors header that promises more than is there.
    await Deno.writeFile(`${s.m}/model.safetensors`, CUT_SHORT);
    assertEquals(await s.generate(), [503, CUT_SHORT_ANSWER]);
  } finally {
    await Deno.remove(s.root, { recursive: true });
  }
});

Deno.test("POST /api/generate of a run whose data.json or import.json is there but not JSON is a 503 called damaged", async () => {
  const s = await setup();
  try {
    await s.whole();
    // Read while the model loads: the run's data record (its tokenizer's),
    // then its import record.
    await Deno.writeTextFile(`${s.root}/r/data.json`, '{"tok');
    refused(
      await s.generate(),
      `${DAMAGED}r/data.json is not valid JSON (expected a data record): `,
    );
    await Deno.remove(`${s.root}/r/data.json`);
    await Deno.writeTextFile(`${s.root}/r/import.json`, '{"fr');
    refused(
      await s.generate(),
      `${DAMAGED}r/import.json is not valid JSON (expected a import record): `,
    );
    // Whole JSON, but not a record: its own words.
    await Deno.writeTextFile(`${s.root}/r/import.json`, "[]");
    refused(
      await s.generate(),
      `${NOT_DAMAGED}r/import.json is not an import record`,
    );
    await Deno.remove(`${s.root}/r/import.json`);
    // Its path and detail apart, named by the run's folder.
    await Deno.writeTextFile(`${s.root}/r/data.json`, '{"tok');
    const damaged = await inRunFolder(
      `${s.root}/r`,
      (at) => loadTrained(at, { model: "ar" }),
    ).then(() => undefined, (e) => e);
    assert(damaged instanceof DamagedFileError, String(damaged));
    assertEquals(
      [damaged.path, damaged.detail.split(":")[0]],
      [`${s.root}/r/data.json`, "is not valid JSON (expected a data record)"],
    );
  } finally {
    await Deno.remove(s.root, { recursive: true });
  }
});

/** Vocab, tokenize and a generation of run r all a 503 calling `detail` damaged. */
async function tokenizerRoutesDamaged(
  s: Awaited<ReturnType<typeof setup>>,
  detail: string,
): Promise<void> {
  refused(
    await s.vocab(),
    `Cannot read the vocabulary of run r: the model's files are damaged: ${detail}`,
  );
  refused(
    await s.tokenize(),
    `Cannot read the tokenizer of run r: the model's files are damaged: ${detail}`,
  );
  refused(await s.generate(), `${DAMAGED}${detail}`);
}

Deno.test("GET /api/run/vocab and /api/run/tokenize of a run whose data.json is there but not JSON are a 503 called damaged, as a generation of it is", async () => {
  const s = await setup();
  try {
    await s.whole();
    await Deno.writeTextFile(`${s.root}/r/data.json`, '{"tok');
    const detail = "r/data.json is not valid JSON (expected a data record): ";
    await tokenizerRoutesDamaged(s, detail);
  } finally {
    await Deno.remove(s.root, { recursive: true });
  }
});

Deno.test("GET /api/run/vocab, /api/run/tokenize and POST /api/generate of a BPE run whose tokenizer.json does not parse are a 503 called damaged; the loader's error names the file and the fault apart", async () => {
  const s = await setup();
  try {
    await s.whole();
    await Deno.writeTextFile(
      `${s.root}/r/config.json`,
      JSON.stringify({ ...s.run, tokenizer: "bpe", vocabSize: 300 }),
    );
    await Deno.writeTextFile(`${s.root}/r/tokenizer.json`, '{"format": "d3');
    const detail = "Cannot load BPE: r/tokenizer.json is not valid JSON";
    await tokenizerRoutesDamaged(s, detail);
    // The loader's error: the file and what is wrong with it, apart.
    const e = await loadTrained(`${s.root}/r`, { model: "ar" }).then(
      () => undefined,
      (e) => e,
    );
    assert(e instanceof DamagedFileError, String(e));
    assertEquals(e.path, `${s.root}/r/tokenizer.json`);
    assert(e.detail.startsWith("is not valid JSON ("), e.detail);
  } finally {
    await Deno.remove(s.root, { recursive: true });
  }
});

Deno.test("GET /api/run/unmasking of a model whose process.json is not JSON or not an object is a 503 called damaged, as a generation of it is; one that is an object but no process is a 503 in its own words", async () => {
  const s = await setup();
  try {
    await s.whole();
    await Deno.writeTextFile(`${s.m}/process.json`, '{"kind": "autoregr');
    const notJson =
      `${DAMAGED}r/seed-0/ar/process.json is not valid JSON (expected a process description): `;
    refused(await s.unmasking(), notJson);
    refused(await s.generate(), notJson);
    for (const text of ["[1, 2]", "null", '"ar"']) {
      await Deno.writeTextFile(`${s.m}/process.json`, text);
      const notObject =
        `${DAMAGED}r/seed-0/ar/process.json is not a process description (expected a JSON object)`;
      refused(await s.unmasking(), notObject);
      refused(await s.generate(), notObject);
    }
    // An object, but not a process: the process's own words, as the
    // generation's.
    await Deno.writeTextFile(`${s.m}/process.json`, "{}");
    const [status, error] = await s.generate();
    assertEquals(status, 503, error);
    assertEquals(await s.unmasking(), [503, error]);
    refused([status, error], NOT_DAMAGED);
  } finally {
    await Deno.remove(s.root, { recursive: true });
  }
});

Deno.test("GET /api/run/unmasking of a model whose process.json is over the 1 MiB a process description may be is a 503 in its own words, not called damaged, as a generation of it is", async () => {
  const s = await setup();
  try {
    await s.whole();
    // Whole JSON, one byte over the bound: refused unread, not damaged.
    const head = '{"kind":"autoregressive","start":256,"pad":"';
    await Deno.writeTextFile(
      `${s.m}/process.json`,
      `${head}${"x".repeat((1 << 20) + 1 - head.length - 2)}"}`,
    );
    assertEquals((await Deno.stat(`${s.m}/process.json`)).size, (1 << 20) + 1);
    const [status, error] = await s.generate();
    assertEquals(
      [status, error],
      [
        503,
        `${NOT_DAMAGED}Cannot read r/seed-0/ar/process.json: it is larger than the 1.0 MiB a process description may be`,
      ],
    );
    assertEquals(await s.unmasking(), [status, error]);
  } finally {
    await Deno.remove(s.root, { recursive: true });
  }
});

Deno.test("POST /api/generate of a model whose process.json records its weights' SHA-256 and whose model.safetensors is cut short is a 503 called damaged", async () => {
  const s = await setup();
  try {
    await s.whole();
    // As training writes it: the process with the SHA-256 of the weights
    // beside it (here a file cut short), so the load reads them once,
    // hashed and parsed from the same bytes.
    await Deno.writeFile(`${s.m}/model.safetensors`, CUT_SHORT);
    await new RunFolder(`${s.root}/r`).writeProcess(0, "ar", {
      kind: "autoregressive",
      start: 256,
    });
    const saved = JSON.parse(await Deno.readTextFile(`${s.m}/process.json`));
    assertEquals(typeof saved.weightsSha256, "string");
    assertEquals(await s.generate(), [503, CUT_SHORT_ANSWER]);
  } finally {
    await Deno.remove(s.root, { recursive: true });
  }
});

Deno.test("POST /api/generate of a model whose file is missing or another run's is a 503 in its own words, not called damaged", async () => {
  const s = await setup();
  try {
    await s.whole();
    await Deno.remove(`${s.m}/config.json`);
    refused(
      await s.generate(),
      `${NOT_DAMAGED}Cannot read r/seed-0/ar/config.json: No such file or directory`,
    );
    // Whole JSON, but another model's configuration.
    await Deno.writeTextFile(
      `${s.m}/config.json`,
      JSON.stringify({ ...s.config, nLayer: s.config.nLayer + 1 }),
    );
    refused(
      await s.generate(),
      `${NOT_DAMAGED}r/seed-0/ar/config.json does not belong to this run: its nLayer is`,
    );
  } finally {
    await Deno.remove(s.root, { recursive: true });
  }
});

Deno.test("inRunFolder() names a damaged file by the run's folder, not by the descriptor it was read through", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  try {
    await Deno.writeTextFile(`${dir}/config.json`, "{}");
    let seen = "";
    const e = await assertRejects(
      () =>
        inRunFolder(dir, (at) => {
          seen = at;
          const path = `${at}/seed-0/ar/process.json`;
          throw new DamagedFileError(`${path} is not valid JSON`, {
            path,
            detail: "is not valid JSON",
          });
        }),
      DamagedFileError,
    );
    assertEquals(
      [e.message, e.path, e.detail],
      [
        `${dir}/seed-0/ar/process.json is not valid JSON`,
        `${dir}/seed-0/ar/process.json`,
        "is not valid JSON",
      ],
    );
    // Where the folder is read through another path (Linux: /proc/self/fd).
    if (Deno.build.os === "linux") assert(seen !== dir, seen);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
