import { encodeSafetensors, SafetensorsError } from "@d3pm/core";
import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { Transformer } from "./transformer.ts";
import {
  deserializeModel,
  loadModel,
  saveModel,
  serializeModel,
} from "./weights.ts";
import { CONFIG_FILE, WEIGHTS_FILE } from "./files.ts";
import { tinyConfig, tokenBatch, useBackend } from "./_test_util.ts";

Deno.test("saveModel() then loadModel() gives identical logits", async () => {
  await useBackend("cpu");
  for (
    const overrides of [
      {},
      {
        kind: "bidirectional",
        positions: "rotary",
        timeConditioning: true,
      },
    ] as const
  ) {
    const config = tinyConfig(overrides);
    const model = new Transformer(config, { seed: 12 });
    // Nonzero adaLN weights, so they must survive the round trip too.
    for (const v of model.variables.values()) {
      v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.01, "float32", 1)));
    }
    const dir = await Deno.makeTempDir();
    await saveModel(model, dir);
    const files = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assertEquals(files, [CONFIG_FILE, WEIGHTS_FILE], "no temporary files left");
    assertEquals(
      JSON.parse(await Deno.readTextFile(`${dir}/${CONFIG_FILE}`)),
      config,
    );
    const back = await loadModel(dir);
    assertEquals(back.config, config);
    const tokens = tokenBatch(2, 9, 32);
    const t = tf.tensor1d([0.2, 0.6]);
    const a = model.forward(tokens, { t }), b = back.forward(tokens, { t });
    assertEquals(a.dataSync(), b.dataSync());
    tf.dispose([tokens, t, a, b]);
    model.dispose();
    back.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deserializeModel() checks the weights against the config", async () => {
  await useBackend("cpu");
  const model = new Transformer(tinyConfig());
  const bytes = serializeModel(model);
  // A config with a wider model does not fit these tensors.
  assertThrows(
    () => deserializeModel(bytes, { config: tinyConfig({ dMlp: 64 }) }),
    SafetensorsError,
    'tensor "h.0.mlp.c_fc.weight" has shape [16,32], expected [16,64]',
  );
  assertThrows(
    () => deserializeModel(bytes, { config: tinyConfig({ nLayer: 3 }) }),
    SafetensorsError,
    'missing tensor "h.2.ln_1.weight"',
  );
  assertThrows(
    () =>
      deserializeModel(bytes, { config: tinyConfig({ positions: "rotary" }) }),
    SafetensorsError,
    'unexpected tensor "wpe.weight"',
  );
  // Without metadata the config must be given.
  const bare = encodeSafetensors(
    new Map([["wte.weight", { shape: [1], data: new Float32Array(1) }]]),
  );
  assertThrows(
    () => deserializeModel(bare),
    SafetensorsError,
    "no config in __metadata__; pass options.config",
  );
  model.dispose();
});

Deno.test("loadModel() rejects a directory whose files disagree", async () => {
  await useBackend("cpu");
  const model = new Transformer(tinyConfig());
  const dir = await Deno.makeTempDir();
  await saveModel(model, dir);
  await Deno.writeTextFile(
    `${dir}/${CONFIG_FILE}`,
    JSON.stringify(tinyConfig({ dropout: 0.5 })),
  );
  await assertRejects(
    () => loadModel(dir),
    SafetensorsError,
    "the config in model.safetensors differs from config.json",
  );
  await Deno.writeTextFile(`${dir}/${CONFIG_FILE}`, "{not json");
  await assertRejects(() => loadModel(dir), RangeError, "is not valid JSON");
  await Deno.writeTextFile(
    `${dir}/${CONFIG_FILE}`,
    JSON.stringify({ ...tinyConfig(), extra: 1 }),
  );
  await assertRejects(() => loadModel(dir), RangeError, 'unknown key "extra"');
  // A truncated weights file.
  await saveModel(model, dir);
  const bytes = await Deno.readFile(`${dir}/${WEIGHTS_FILE}`);
  await Deno.writeFile(
    `${dir}/${WEIGHTS_FILE}`,
    bytes.subarray(0, bytes.length - 100),
  );
  const error = await assertRejects(() => loadModel(dir), SafetensorsError);
  assert(error.message.includes("truncated file?"), error.message);
  model.dispose();
  await Deno.remove(dir, { recursive: true });
});

// loadModel read config.json and model.safetensors whole with no bound:
// `sample` on a run whose model.safetensors was a 1.5 GB file took 3.2 GB
// of memory before refusing it, a link to /dev/zero never ended, and a
// FIFO hung it. Both are now read bounded: the weights by what the config
// can hold, before a byte is read.
Deno.test("loadModel() reads config.json and the weights bounded: a FIFO, a device or a file larger than the config's weights is refused in one line naming it", async () => {
  const { within } = await import("../core/_within_test_util.ts");
  const { weightsFileBytes } = await import("./weights.ts");
  await useBackend("cpu");
  const config = tinyConfig();
  const model = new Transformer(config, { seed: 1 });
  const dir = await Deno.makeTempDir();
  const weights = `${dir}/${WEIGHTS_FILE}`, cfg = `${dir}/${CONFIG_FILE}`;
  try {
    await saveModel(model, dir);
    const size = (await Deno.stat(weights)).size;
    assert(size <= weightsFileBytes(config), `${size}`);
    const saved = await Deno.readFile(weights);
    const refused = async (path: string, why: string) => {
      const rss = Deno.memoryUsage().rss;
      const got = await within(5000, () => loadModel(dir), path);
      if (got === "timeout") throw new Error(`${why}: still reading after 5 s`);
      if (!("error" in got)) {
        (got.value as Transformer).dispose();
        throw new Error(`${why}: loaded`);
      }
      const msg = (got.error as Error).message;
      assert(got.error instanceof RangeError, msg);
      assert(
        msg.startsWith(`Cannot load model: Cannot read ${path}: ${why}`) &&
          !msg.includes("\n"),
        msg,
      );
      assert(Deno.memoryUsage().rss - rss < 96 << 20, `${why}: read whole`);
      await Deno.remove(path);
    };
    await Deno.remove(weights);
    await new Deno.Command("mkfifo", { args: [weights] }).output();
    await refused(weights, "it is a FIFO");
    await Deno.symlink("/dev/zero", weights);
    await refused(weights, "it is a character device");
    await Deno.writeFile(weights, saved);
    await (await Deno.open(weights, { write: true })).truncate(256 << 20);
    await refused(weights, "it is larger than the ");
    await Deno.writeFile(weights, saved);
    const text = await Deno.readTextFile(cfg);
    await Deno.remove(cfg);
    await new Deno.Command("mkfifo", { args: [cfg] }).output();
    await refused(cfg, "it is a FIFO");
    await Deno.writeTextFile(cfg, text);
    (await loadModel(dir)).dispose(); // restored, it loads
  } finally {
    model.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
