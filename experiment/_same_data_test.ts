// compareData() split by split and on the tokenizer's real size: each
// split's SHA-256 and the tokenizer's id and size are compared, by record.
import { assertEquals } from "@std/assert";
import { compareData } from "./_same_data.ts";
import type { DataRecord } from "./run_folder.ts";

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
