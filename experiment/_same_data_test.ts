// compareData() split by split and on the tokenizer's real size: each
// split's SHA-256 and the tokenizer's id and size are compared, by record.
import { assertEquals, assertRejects } from "@std/assert";
import { compareData } from "./_same_data.ts";
import { ConfigError } from "./options.ts";
import { type DataRecord, RunFolder } from "./run_folder.ts";

const RECORD: DataRecord = {
  sha256: {
    train: "a".repeat(64),
    valid: "b".repeat(64),
    test: "c".repeat(64),
  },
  tokenizer: { id: "bpe-v1-0123", vocabSize: 4096 },
};

Deno.test("compareData() names each split whose SHA-256 differs, the test split included, and takes equal records under other paths", () => {
  const side = (name: string, data: string, record: DataRecord) => ({
    name,
    data,
    record,
  });
  assertEquals(
    compareData(side("a", "/old", RECORD), side("b", "/new", RECORD)),
    {},
  );
  for (const split of ["train", "valid", "test"] as const) {
    const other = {
      ...RECORD,
      sha256: { ...RECORD.sha256, [split]: "d".repeat(64) },
    };
    assertEquals(
      compareData(side("a", "/d", RECORD), side("b", "/d", other)).differ,
      `their data differ (the same --data path "/d", its files replaced between the runs): ${split} SHA-256 dddddddddddd… in b but ${
        RECORD.sha256[split].slice(0, 12)
      }… in a (their data.json)`,
    );
  }
});

Deno.test("compareData() refuses a tokenizer of the same id but another real size (a BPE that ran out of pairs), and another id of the same size", () => {
  const side = (name: string, tokenizer: DataRecord["tokenizer"]) => ({
    name,
    data: "/d",
    record: { ...RECORD, tokenizer },
  });
  assertEquals(
    compareData(
      side("a", RECORD.tokenizer),
      side("b", { id: "bpe-v1-0123", vocabSize: 4000 }),
    ).differ,
    "their tokenizers differ (bpe-v1-0123 with 4000 ids in b but bpe-v1-0123 with 4096 in a; their data.json)",
  );
  assertEquals(
    compareData(
      side("a", RECORD.tokenizer),
      side("b", { id: "bpe-v1-4567", vocabSize: 4096 }),
    ).differ,
    "their tokenizers differ (bpe-v1-4567 with 4096 ids in b but bpe-v1-0123 with 4096 in a; their data.json)",
  );
});

Deno.test("RunFolder.verifyData() refuses the same bytes read as plain text where the run read WikiText", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(dir);
    const then = {
      sha256: { train: "a", valid: "b", test: "c" },
      tokenizer: { id: "byte", vocabSize: 260 },
    };
    await Deno.writeTextFile(folder.dataPath, JSON.stringify(then));
    await folder.verifyData(then);
    await assertRejects(
      () => folder.verifyData({ ...then, format: "text", reading: 2 }),
      ConfigError,
      "(read as WikiText then, as plain text now",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RunFolder.verifyData() refuses plain text read before CR became a line break (a record without reading) as read otherwise, and compareData() two such runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const folder = new RunFolder(dir);
    const then = {
      sha256: { train: "a", valid: "b", test: "c" },
      tokenizer: { id: "byte", vocabSize: 260 },
      format: "text" as const,
    };
    await Deno.writeTextFile(folder.dataPath, JSON.stringify(then));
    await folder.verifyData(then);
    await assertRejects(
      () => folder.verifyData({ ...then, reading: 2 }),
      ConfigError,
      "it read its plain text by reading 1, a CR kept inside its line, and this version reads it by reading 2",
    );
    await folder.verifyData({ ...then, reading: 1 });
    const side = (name: string, record: DataRecord) => ({
      name,
      data: "/d",
      record,
    });
    assertEquals(
      compareData(side("a", then), side("b", { ...then, reading: 2 })).differ,
      "their data differ: plain text (reading 2 of 2) in b but plain text (reading 1 of 2) in a (their data.json)",
    );
    assertEquals(
      compareData(
        side("a", { ...then, reading: 2 }),
        side("b", { ...then, reading: 2 }),
      ),
      {},
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compareData() without a record on one side or both goes by the --data path: the same path taken with a note naming the run without one, another path refused", () => {
  assertEquals(
    compareData(
      { name: "a", data: "/d", record: RECORD },
      { name: "b", data: "/d" },
    ),
    {
      note:
        `note: b has no data.json (made before data records): its data are taken to be a's and b's by their --data path "/d" alone, not verified by the files' SHA-256`,
    },
  );
  assertEquals(
    compareData({ name: "a", data: "/d" }, { name: "b", data: "/e" }),
    {
      differ:
        `--data is "/e" in b but "/d" in a, and a and b have no data.json (made before data records) to show they are the same files`,
    },
  );
});
