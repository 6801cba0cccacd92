import { assert, assertEquals, assertThrows } from "@std/assert";
import { type PickleValue, readPickle } from "./_pickle.ts";
import { InteropError } from "./errors.ts";

const enc = new TextEncoder();
const bytes = (...parts: (number | string)[]) =>
  Uint8Array.from(
    parts.flatMap((p) => typeof p === "string" ? [...enc.encode(p)] : [p]),
  );

Deno.test("readPickle() reads the memo, frames and small opcodes of protocols 2–4 as torch.save emits them", () => {
  // {"a.weight": T(storage 0, [2, 3]), "b.weight": T(the same storage, [3], offset 3)}
  // with the storage memoized by BINPUT and fetched by BINGET (a tied weight).
  const p = bytes(
    0x80,
    4,
    0x95,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // PROTO 4, FRAME
    0x7d,
    0x94,
    0x28, // EMPTY_DICT, MEMOIZE, MARK
    0x8c,
    8,
    "a.weight",
    0x94, // SHORT_BINUNICODE, MEMOIZE
    0x8c,
    12,
    "torch._utils",
    0x8c,
    18,
    "_rebuild_tensor_v2",
    0x93,
    0x94, // STACK_GLOBAL
    0x28,
    0x28,
    0x8c,
    7,
    "storage",
    0x63,
    "torch\nHalfStorage\n",
    0x8c,
    1,
    "0",
    0x8c,
    3,
    "cpu",
    0x4b,
    6,
    0x74,
    0x51,
    0x71,
    40, // (…) BINPERSID, BINPUT 40
    0x4b,
    0,
    0x4b,
    2,
    0x4b,
    3,
    0x86,
    0x4b,
    3,
    0x4b,
    1,
    0x86,
    0x89, // offset, TUPLE2 size, TUPLE2 stride, NEWFALSE
    0x63,
    "collections\nOrderedDict\n",
    0x29,
    0x52,
    0x74,
    0x52, // OrderedDict(), TUPLE, REDUCE
    0x8c,
    8,
    "b.weight",
    0x68,
    2, // BINGET 2: the rebuild function again
    0x28,
    0x68,
    40,
    0x4d,
    3,
    0,
    0x4b,
    3,
    0x85,
    0x4b,
    1,
    0x85,
    0x89,
    0x4e,
    0x74,
    0x52, // BINGET 40, BININT2, TUPLE1, NONE
    0x75,
    0x2e, // SETITEMS, STOP
  );
  const root = readPickle(p, "x.bin") as Map<string, Record<string, unknown>>;
  const a = root.get("a.weight")!, b = root.get("b.weight")!;
  assertEquals(a.shape, [2, 3]);
  assertEquals(a.stride, [3, 1]);
  assertEquals(b.offset, 3);
  assertEquals(b.shape, [3]);
  assertEquals(a.storage, {
    kind: "storage",
    dtype: "F16",
    key: "0",
    numel: 6,
  });
  assertEquals(b.storage, a.storage);
});

Deno.test("readPickle() refuses globals outside a state dict's and malformed pickles, in one line naming the file", () => {
  const refuse = (p: Uint8Array, fragment: string) => {
    const e = assertThrows(() => readPickle(p, "x.bin"), InteropError);
    if (!e.message.startsWith("x.bin: ") || !e.message.includes(fragment)) {
      throw new Error(`"${e.message}" should mention "${fragment}"`);
    }
  };
  refuse(
    bytes(0x80, 2, 0x63, "builtins\neval\n", 0x2e),
    "it names builtins.eval",
  );
  refuse(
    bytes(0x80, 2, 0x8c, 5, "posix", 0x8c, 6, "system", 0x93, 0x2e),
    "it names posix.system",
  );
  refuse(
    bytes(0x80, 2, 0x63, "torch.nn.modules.linear\nLinear\n", 0x2e),
    "it names torch.nn.modules.linear.Linear",
  );
  refuse(
    bytes(0x80, 2, 0x63, "torch\nFloatStorage\n", 0x29, 0x52, 0x2e),
    "torch.FloatStorage cannot be called",
  );
  refuse(bytes(0x80, 2, 0x7d), "ends in the middle of an opcode");
  refuse(
    bytes(0x80, 2, 0x68, 9, 0x2e),
    "a memo reference 9 that was never stored",
  );
  refuse(bytes(0x80, 2, 0x30, 0x2e), "the pickle stops with a stack of 0");
  refuse(
    bytes(0x80, 2, 0x28, 0x8c, 1, "x", 0x74, 0x51, 0x2e),
    "a persistent id that is not a torch storage",
  );
  refuse(bytes(0x80, 6), "a pickle protocol above 5");
});

// Pickles written by Python 3's `pickle.dumps` and by `torch.save` (torch
// 2.13, its zip's `data.pkl`), kept here as base64 so that no test needs
// Python. Made by, in .cache/venv-hf:
//
//   keys = [f"k{i}" for i in range(260)]; shared = ["s"]
//   v = [0, 1, 255, 256, 65535, 65536, -1, -2**31, 2**31 - 1, 2**31,
//        -2**31 - 1, 2**53 - 1, -(2**53 - 1), 1.5, -0.25, 1e300, "", "é",
//        "x" * 300, None, True, False, (), (1,), (1, 2), (1, 2, 3),
//        (1, 2, 3, 4), {"a": 1, "b": [2]}, shared, shared, keys, keys[259]]
//   PLAIN_2, PLAIN_4 = pickle.dumps(v, protocol=2), pickle.dumps(v, protocol=4)
//   BYTES_3 = pickle.dumps([b"", b"ab", b"z" * 300], protocol=3)
//   base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
//   sd = OrderedDict(w=base, wt=base.t(), row=base[2],
//        h=torch.zeros(5, dtype=torch.float16),
//        bf=torch.zeros(2, 2, dtype=torch.bfloat16),
//        i=torch.tensor([1, -2]), b=torch.tensor([True]), s=torch.tensor(3.5),
//        p=torch.nn.Parameter(torch.ones(2)), e=torch.zeros(0, 7))
//   sd._metadata = OrderedDict({"": {"version": 1}})
//   torch.save(sd, f, pickle_protocol=2) and 4: TORCH_2, TORCH_4

const PLAIN_2 =
  "gAJdcQAoSwBLAUv/TQABTf//SgAAAQBK/////0oAAACASv///3+KBQAAAIAAigX///9//4oH////" +
  "////H4oHAQAAAAAA4Ec/+AAAAAAAAEe/0AAAAAAAAEd+N+Q8iAB1nFgAAAAAcQFYAgAAAMOpcQJY" +
  "LAEAAHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eHEDToiJKUsBhXEESwFLAoZxBUsBSwJLA4dxBihLAUsCSwNLBHRx" +
  "B31xCChYAQAAAGFxCUsBWAEAAABicQpdcQtLAmF1XXEMWAEAAABzcQ1haAxdcQ4oWAIAAABrMHEP" +
  "WAIAAABrMXEQWAIAAABrMnERWAIAAABrM3ESWAIAAABrNHETWAIAAABrNXEUWAIAAABrNnEVWAIA" +
  "AABrN3EWWAIAAABrOHEXWAIAAABrOXEYWAMAAABrMTBxGVgDAAAAazExcRpYAwAAAGsxMnEbWAMA" +
  "AABrMTNxHFgDAAAAazE0cR1YAwAAAGsxNXEeWAMAAABrMTZxH1gDAAAAazE3cSBYAwAAAGsxOHEh" +
  "WAMAAABrMTlxIlgDAAAAazIwcSNYAwAAAGsyMXEkWAMAAABrMjJxJVgDAAAAazIzcSZYAwAAAGsy" +
  "NHEnWAMAAABrMjVxKFgDAAAAazI2cSlYAwAAAGsyN3EqWAMAAABrMjhxK1gDAAAAazI5cSxYAwAA" +
  "AGszMHEtWAMAAABrMzFxLlgDAAAAazMycS9YAwAAAGszM3EwWAMAAABrMzRxMVgDAAAAazM1cTJY" +
  "AwAAAGszNnEzWAMAAABrMzdxNFgDAAAAazM4cTVYAwAAAGszOXE2WAMAAABrNDBxN1gDAAAAazQx" +
  "cThYAwAAAGs0MnE5WAMAAABrNDNxOlgDAAAAazQ0cTtYAwAAAGs0NXE8WAMAAABrNDZxPVgDAAAA" +
  "azQ3cT5YAwAAAGs0OHE/WAMAAABrNDlxQFgDAAAAazUwcUFYAwAAAGs1MXFCWAMAAABrNTJxQ1gD" +
  "AAAAazUzcURYAwAAAGs1NHFFWAMAAABrNTVxRlgDAAAAazU2cUdYAwAAAGs1N3FIWAMAAABrNThx" +
  "SVgDAAAAazU5cUpYAwAAAGs2MHFLWAMAAABrNjFxTFgDAAAAazYycU1YAwAAAGs2M3FOWAMAAABr" +
  "NjRxT1gDAAAAazY1cVBYAwAAAGs2NnFRWAMAAABrNjdxUlgDAAAAazY4cVNYAwAAAGs2OXFUWAMA" +
  "AABrNzBxVVgDAAAAazcxcVZYAwAAAGs3MnFXWAMAAABrNzNxWFgDAAAAazc0cVlYAwAAAGs3NXFa" +
  "WAMAAABrNzZxW1gDAAAAazc3cVxYAwAAAGs3OHFdWAMAAABrNzlxXlgDAAAAazgwcV9YAwAAAGs4" +
  "MXFgWAMAAABrODJxYVgDAAAAazgzcWJYAwAAAGs4NHFjWAMAAABrODVxZFgDAAAAazg2cWVYAwAA" +
  "AGs4N3FmWAMAAABrODhxZ1gDAAAAazg5cWhYAwAAAGs5MHFpWAMAAABrOTFxalgDAAAAazkycWtY" +
  "AwAAAGs5M3FsWAMAAABrOTRxbVgDAAAAazk1cW5YAwAAAGs5NnFvWAMAAABrOTdxcFgDAAAAazk4" +
  "cXFYAwAAAGs5OXFyWAQAAABrMTAwcXNYBAAAAGsxMDFxdFgEAAAAazEwMnF1WAQAAABrMTAzcXZY" +
  "BAAAAGsxMDRxd1gEAAAAazEwNXF4WAQAAABrMTA2cXlYBAAAAGsxMDdxelgEAAAAazEwOHF7WAQA" +
  "AABrMTA5cXxYBAAAAGsxMTBxfVgEAAAAazExMXF+WAQAAABrMTEycX9YBAAAAGsxMTNxgFgEAAAA" +
  "azExNHGBWAQAAABrMTE1cYJYBAAAAGsxMTZxg1gEAAAAazExN3GEWAQAAABrMTE4cYVYBAAAAGsx" +
  "MTlxhlgEAAAAazEyMHGHWAQAAABrMTIxcYhYBAAAAGsxMjJxiVgEAAAAazEyM3GKWAQAAABrMTI0" +
  "cYtYBAAAAGsxMjVxjFgEAAAAazEyNnGNWAQAAABrMTI3cY5YBAAAAGsxMjhxj1gEAAAAazEyOXGQ" +
  "WAQAAABrMTMwcZFYBAAAAGsxMzFxklgEAAAAazEzMnGTWAQAAABrMTMzcZRYBAAAAGsxMzRxlVgE" +
  "AAAAazEzNXGWWAQAAABrMTM2cZdYBAAAAGsxMzdxmFgEAAAAazEzOHGZWAQAAABrMTM5cZpYBAAA" +
  "AGsxNDBxm1gEAAAAazE0MXGcWAQAAABrMTQycZ1YBAAAAGsxNDNxnlgEAAAAazE0NHGfWAQAAABr" +
  "MTQ1caBYBAAAAGsxNDZxoVgEAAAAazE0N3GiWAQAAABrMTQ4caNYBAAAAGsxNDlxpFgEAAAAazE1" +
  "MHGlWAQAAABrMTUxcaZYBAAAAGsxNTJxp1gEAAAAazE1M3GoWAQAAABrMTU0calYBAAAAGsxNTVx" +
  "qlgEAAAAazE1NnGrWAQAAABrMTU3caxYBAAAAGsxNThxrVgEAAAAazE1OXGuWAQAAABrMTYwca9Y" +
  "BAAAAGsxNjFxsFgEAAAAazE2MnGxWAQAAABrMTYzcbJYBAAAAGsxNjRxs1gEAAAAazE2NXG0WAQA" +
  "AABrMTY2cbVYBAAAAGsxNjdxtlgEAAAAazE2OHG3WAQAAABrMTY5cbhYBAAAAGsxNzBxuVgEAAAA" +
  "azE3MXG6WAQAAABrMTcycbtYBAAAAGsxNzNxvFgEAAAAazE3NHG9WAQAAABrMTc1cb5YBAAAAGsx" +
  "NzZxv1gEAAAAazE3N3HAWAQAAABrMTc4ccFYBAAAAGsxNzlxwlgEAAAAazE4MHHDWAQAAABrMTgx" +
  "ccRYBAAAAGsxODJxxVgEAAAAazE4M3HGWAQAAABrMTg0ccdYBAAAAGsxODVxyFgEAAAAazE4NnHJ" +
  "WAQAAABrMTg3ccpYBAAAAGsxODhxy1gEAAAAazE4OXHMWAQAAABrMTkwcc1YBAAAAGsxOTFxzlgE" +
  "AAAAazE5MnHPWAQAAABrMTkzcdBYBAAAAGsxOTRx0VgEAAAAazE5NXHSWAQAAABrMTk2cdNYBAAA" +
  "AGsxOTdx1FgEAAAAazE5OHHVWAQAAABrMTk5cdZYBAAAAGsyMDBx11gEAAAAazIwMXHYWAQAAABr" +
  "MjAycdlYBAAAAGsyMDNx2lgEAAAAazIwNHHbWAQAAABrMjA1cdxYBAAAAGsyMDZx3VgEAAAAazIw" +
  "N3HeWAQAAABrMjA4cd9YBAAAAGsyMDlx4FgEAAAAazIxMHHhWAQAAABrMjExceJYBAAAAGsyMTJx" +
  "41gEAAAAazIxM3HkWAQAAABrMjE0ceVYBAAAAGsyMTVx5lgEAAAAazIxNnHnWAQAAABrMjE3cehY" +
  "BAAAAGsyMThx6VgEAAAAazIxOXHqWAQAAABrMjIwcetYBAAAAGsyMjFx7FgEAAAAazIyMnHtWAQA" +
  "AABrMjIzce5YBAAAAGsyMjRx71gEAAAAazIyNXHwWAQAAABrMjI2cfFYBAAAAGsyMjdx8lgEAAAA" +
  "azIyOHHzWAQAAABrMjI5cfRYBAAAAGsyMzBx9VgEAAAAazIzMXH2WAQAAABrMjMycfdYBAAAAGsy" +
  "MzNx+FgEAAAAazIzNHH5WAQAAABrMjM1cfpYBAAAAGsyMzZx+1gEAAAAazIzN3H8WAQAAABrMjM4" +
  "cf1YBAAAAGsyMzlx/lgEAAAAazI0MHH/WAQAAABrMjQxcgABAABYBAAAAGsyNDJyAQEAAFgEAAAA" +
  "azI0M3ICAQAAWAQAAABrMjQ0cgMBAABYBAAAAGsyNDVyBAEAAFgEAAAAazI0NnIFAQAAWAQAAABr" +
  "MjQ3cgYBAABYBAAAAGsyNDhyBwEAAFgEAAAAazI0OXIIAQAAWAQAAABrMjUwcgkBAABYBAAAAGsy" +
  "NTFyCgEAAFgEAAAAazI1MnILAQAAWAQAAABrMjUzcgwBAABYBAAAAGsyNTRyDQEAAFgEAAAAazI1" +
  "NXIOAQAAWAQAAABrMjU2cg8BAABYBAAAAGsyNTdyEAEAAFgEAAAAazI1OHIRAQAAWAQAAABrMjU5" +
  "chIBAABlahIBAABlLg==";
const PLAIN_4 =
  "gASVjggAAAAAAABdlChLAEsBS/9NAAFN//9KAAABAEr/////SgAAAIBK////f4oFAAAAgACKBf//" +
  "/3//igf///////8figcBAAAAAADgRz/4AAAAAAAAR7/QAAAAAAAAR3435DyIAHWcjACUjALDqZRY" +
  "LAEAAHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4" +
  "eHh4eHh4eHh4eHh4eHh4eHh4eJROiIkpSwGFlEsBSwKGlEsBSwJLA4eUKEsBSwJLA0sEdJR9lCiM" +
  "AWGUSwGMAWKUXZRLAmF1XZSMAXOUYWgMXZQojAJrMJSMAmsxlIwCazKUjAJrM5SMAms0lIwCazWU" +
  "jAJrNpSMAms3lIwCaziUjAJrOZSMA2sxMJSMA2sxMZSMA2sxMpSMA2sxM5SMA2sxNJSMA2sxNZSM" +
  "A2sxNpSMA2sxN5SMA2sxOJSMA2sxOZSMA2syMJSMA2syMZSMA2syMpSMA2syM5SMA2syNJSMA2sy" +
  "NZSMA2syNpSMA2syN5SMA2syOJSMA2syOZSMA2szMJSMA2szMZSMA2szMpSMA2szM5SMA2szNJSM" +
  "A2szNZSMA2szNpSMA2szN5SMA2szOJSMA2szOZSMA2s0MJSMA2s0MZSMA2s0MpSMA2s0M5SMA2s0" +
  "NJSMA2s0NZSMA2s0NpSMA2s0N5SMA2s0OJSMA2s0OZSMA2s1MJSMA2s1MZSMA2s1MpSMA2s1M5SM" +
  "A2s1NJSMA2s1NZSMA2s1NpSMA2s1N5SMA2s1OJSMA2s1OZSMA2s2MJSMA2s2MZSMA2s2MpSMA2s2" +
  "M5SMA2s2NJSMA2s2NZSMA2s2NpSMA2s2N5SMA2s2OJSMA2s2OZSMA2s3MJSMA2s3MZSMA2s3MpSM" +
  "A2s3M5SMA2s3NJSMA2s3NZSMA2s3NpSMA2s3N5SMA2s3OJSMA2s3OZSMA2s4MJSMA2s4MZSMA2s4" +
  "MpSMA2s4M5SMA2s4NJSMA2s4NZSMA2s4NpSMA2s4N5SMA2s4OJSMA2s4OZSMA2s5MJSMA2s5MZSM" +
  "A2s5MpSMA2s5M5SMA2s5NJSMA2s5NZSMA2s5NpSMA2s5N5SMA2s5OJSMA2s5OZSMBGsxMDCUjARr" +
  "MTAxlIwEazEwMpSMBGsxMDOUjARrMTA0lIwEazEwNZSMBGsxMDaUjARrMTA3lIwEazEwOJSMBGsx" +
  "MDmUjARrMTEwlIwEazExMZSMBGsxMTKUjARrMTEzlIwEazExNJSMBGsxMTWUjARrMTE2lIwEazEx" +
  "N5SMBGsxMTiUjARrMTE5lIwEazEyMJSMBGsxMjGUjARrMTIylIwEazEyM5SMBGsxMjSUjARrMTI1" +
  "lIwEazEyNpSMBGsxMjeUjARrMTI4lIwEazEyOZSMBGsxMzCUjARrMTMxlIwEazEzMpSMBGsxMzOU" +
  "jARrMTM0lIwEazEzNZSMBGsxMzaUjARrMTM3lIwEazEzOJSMBGsxMzmUjARrMTQwlIwEazE0MZSM" +
  "BGsxNDKUjARrMTQzlIwEazE0NJSMBGsxNDWUjARrMTQ2lIwEazE0N5SMBGsxNDiUjARrMTQ5lIwE" +
  "azE1MJSMBGsxNTGUjARrMTUylIwEazE1M5SMBGsxNTSUjARrMTU1lIwEazE1NpSMBGsxNTeUjARr" +
  "MTU4lIwEazE1OZSMBGsxNjCUjARrMTYxlIwEazE2MpSMBGsxNjOUjARrMTY0lIwEazE2NZSMBGsx" +
  "NjaUjARrMTY3lIwEazE2OJSMBGsxNjmUjARrMTcwlIwEazE3MZSMBGsxNzKUjARrMTczlIwEazE3" +
  "NJSMBGsxNzWUjARrMTc2lIwEazE3N5SMBGsxNziUjARrMTc5lIwEazE4MJSMBGsxODGUjARrMTgy" +
  "lIwEazE4M5SMBGsxODSUjARrMTg1lIwEazE4NpSMBGsxODeUjARrMTg4lIwEazE4OZSMBGsxOTCU" +
  "jARrMTkxlIwEazE5MpSMBGsxOTOUjARrMTk0lIwEazE5NZSMBGsxOTaUjARrMTk3lIwEazE5OJSM" +
  "BGsxOTmUjARrMjAwlIwEazIwMZSMBGsyMDKUjARrMjAzlIwEazIwNJSMBGsyMDWUjARrMjA2lIwE" +
  "azIwN5SMBGsyMDiUjARrMjA5lIwEazIxMJSMBGsyMTGUjARrMjEylIwEazIxM5SMBGsyMTSUjARr" +
  "MjE1lIwEazIxNpSMBGsyMTeUjARrMjE4lIwEazIxOZSMBGsyMjCUjARrMjIxlIwEazIyMpSMBGsy" +
  "MjOUjARrMjI0lIwEazIyNZSMBGsyMjaUjARrMjI3lIwEazIyOJSMBGsyMjmUjARrMjMwlIwEazIz" +
  "MZSMBGsyMzKUjARrMjMzlIwEazIzNJSMBGsyMzWUjARrMjM2lIwEazIzN5SMBGsyMziUjARrMjM5" +
  "lIwEazI0MJSMBGsyNDGUjARrMjQylIwEazI0M5SMBGsyNDSUjARrMjQ1lIwEazI0NpSMBGsyNDeU" +
  "jARrMjQ4lIwEazI0OZSMBGsyNTCUjARrMjUxlIwEazI1MpSMBGsyNTOUjARrMjU0lIwEazI1NZSM" +
  "BGsyNTaUjARrMjU3lIwEazI1OJSMBGsyNTmUZWoSAQAAZS4=";
const BYTES_3 =
  "gANdcQAoQwBxAUMCYWJxAkIsAQAAenp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6" +
  "enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6" +
  "enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6" +
  "enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6" +
  "enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6" +
  "enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6enp6cQNlLg==";
const TORCH_2 =
  "gAJjY29sbGVjdGlvbnMKT3JkZXJlZERpY3QKcQApUnEBKFgBAAAAd3ECY3RvcmNoLl91dGlscwpf" +
  "cmVidWlsZF90ZW5zb3JfdjIKcQMoKFgHAAAAc3RvcmFnZXEEY3RvcmNoCkZsb2F0U3RvcmFnZQpx" +
  "BVgBAAAAMHEGWAMAAABjcHVxB0sMdHEIUUsASwNLBIZxCUsESwGGcQqJaAApUnELdHEMUnENWAIA" +
  "AAB3dHEOaAMoKGgEaAVoBmgHSwx0cQ9RSwBLBEsDhnEQSwFLBIZxEYloAClScRJ0cRNScRRYAwAA" +
  "AHJvd3EVaAMoKGgEaAVoBmgHSwx0cRZRSwhLBIVxF0sBhXEYiWgAKVJxGXRxGlJxG1gBAAAAaHEc" +
  "aAMoKGgEY3RvcmNoCkhhbGZTdG9yYWdlCnEdWAEAAAAxcR5oB0sFdHEfUUsASwWFcSBLAYVxIYlo" +
  "AClScSJ0cSNScSRYAgAAAGJmcSVoAygoaARjdG9yY2gKQkZsb2F0MTZTdG9yYWdlCnEmWAEAAAAy" +
  "cSdoB0sEdHEoUUsASwJLAoZxKUsCSwGGcSqJaAApUnErdHEsUnEtWAEAAABpcS5oAygoaARjdG9y" +
  "Y2gKTG9uZ1N0b3JhZ2UKcS9YAQAAADNxMGgHSwJ0cTFRSwBLAoVxMksBhXEziWgAKVJxNHRxNVJx" +
  "NlgBAAAAYnE3aAMoKGgEY3RvcmNoCkJvb2xTdG9yYWdlCnE4WAEAAAA0cTloB0sBdHE6UUsASwGF" +
  "cTtLAYVxPIloAClScT10cT5ScT9YAQAAAHNxQGgDKChoBGgFWAEAAAA1cUFoB0sBdHFCUUsAKSmJ" +
  "aAApUnFDdHFEUnFFWAEAAABwcUZjdG9yY2guX3V0aWxzCl9yZWJ1aWxkX3BhcmFtZXRlcgpxR2gD" +
  "KChoBGgFWAEAAAA2cUhoB0sCdHFJUUsASwKFcUpLAYVxS4loAClScUx0cU1ScU6IaAApUnFPh3FQ" +
  "UnFRWAEAAABlcVJoAygoaARoBVgBAAAAN3FTaAdLAHRxVFFLAEsASweGcVVLB0sBhnFWiWgAKVJx" +
  "V3RxWFJxWXV9cVpYCQAAAF9tZXRhZGF0YXFbaAApUnFcWAAAAABxXX1xXlgHAAAAdmVyc2lvbnFf" +
  "SwFzc3NiLg==";
const TORCH_4 =
  "gASVsgIAAAAAAACMC2NvbGxlY3Rpb25zlIwLT3JkZXJlZERpY3SUk5QpUpQojAF3lIwMdG9yY2gu" +
  "X3V0aWxzlIwSX3JlYnVpbGRfdGVuc29yX3YylJOUKCiMB3N0b3JhZ2WUjAV0b3JjaJSMDEZsb2F0" +
  "U3RvcmFnZZSTlIwBMJSMA2NwdZRLDHSUUUsASwNLBIaUSwRLAYaUiWgCKVKUdJRSlIwCd3SUaAco" +
  "KGgIaAtoDGgNSwx0lFFLAEsESwOGlEsBSwSGlIloAilSlHSUUpSMA3Jvd5RoBygoaAhoC2gMaA1L" +
  "DHSUUUsISwSFlEsBhZSJaAIpUpR0lFKUjAFolGgHKChoCGgJjAtIYWxmU3RvcmFnZZSTlIwBMZRo" +
  "DUsFdJRRSwBLBYWUSwGFlIloAilSlHSUUpSMAmJmlGgHKChoCGgJjA9CRmxvYXQxNlN0b3JhZ2WU" +
  "k5SMATKUaA1LBHSUUUsASwJLAoaUSwJLAYaUiWgCKVKUdJRSlIwBaZRoBygoaAhoCYwLTG9uZ1N0" +
  "b3JhZ2WUk5SMATOUaA1LAnSUUUsASwKFlEsBhZSJaAIpUpR0lFKUjAFilGgHKChoCGgJjAtCb29s" +
  "U3RvcmFnZZSTlIwBNJRoDUsBdJRRSwBLAYWUSwGFlIloAilSlHSUUpSMAXOUaAcoKGgIaAuMATWU" +
  "aA1LAXSUUUsAKSmJaAIpUpR0lFKUjAFwlGgFjBJfcmVidWlsZF9wYXJhbWV0ZXKUk5RoBygoaAho" +
  "C4wBNpRoDUsCdJRRSwBLAoWUSwGFlIloAilSlHSUUpSIaAIpUpSHlFKUjAFllGgHKChoCGgLjAE3" +
  "lGgNSwB0lFFLAEsASweGlEsHSwGGlIloAilSlHSUUpR1fZSMCV9tZXRhZGF0YZRoAilSlIwAlH2U" +
  "jAd2ZXJzaW9ulEsBc3NzYi4=";

const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

Deno.test("readPickle() reads what Python's pickle writes at protocols 2 and 4: every integer width, floats, strings, tuples, dicts, shared objects and a memo past 255", () => {
  const keys = Array.from({ length: 260 }, (_, i) => `k${i}`);
  const expected = [
    0,
    1,
    255,
    256,
    65535,
    65536,
    -1,
    -(2 ** 31),
    2 ** 31 - 1,
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 53 - 1,
    -(2 ** 53 - 1),
    1.5,
    -0.25,
    1e300,
    "",
    "é",
    "x".repeat(300),
    null,
    true,
    false,
    [],
    [1],
    [1, 2],
    [1, 2, 3],
    [1, 2, 3, 4],
    new Map<string, unknown>([["a", 1], ["b", [2]]]),
    ["s"],
    ["s"],
    keys,
    "k259",
  ];
  for (const [protocol, base64] of [[2, PLAIN_2], [4, PLAIN_4]] as const) {
    const got = readPickle(b64(base64), "v.pkl") as PickleValue[];
    assertEquals(got, expected, `protocol ${protocol}`);
    // The same list twice is one object, fetched from the memo.
    assert(got[28] === got[29], `protocol ${protocol}`);
  }
  assertEquals(readPickle(b64(BYTES_3), "b.pkl"), [
    new Uint8Array(0),
    Uint8Array.of(0x61, 0x62),
    new Uint8Array(300).fill(0x7a),
  ]);
});

Deno.test("readPickle() reads torch.save's state dict at protocols 2 and 4: storages, views, offsets, strides, dtypes, a Parameter, a scalar, an empty tensor", () => {
  const storage = (dtype: string, key: string, numel: number) => ({
    kind: "storage",
    dtype,
    key,
    numel,
  });
  const tensor = (
    s: ReturnType<typeof storage>,
    offset: number,
    shape: number[],
    stride: number[],
  ) => ({ kind: "tensor", storage: s, offset, shape, stride });
  const base = storage("F32", "0", 12);
  const expected = new Map<string, unknown>([
    ["w", tensor(base, 0, [3, 4], [4, 1])],
    ["wt", tensor(base, 0, [4, 3], [1, 4])],
    ["row", tensor(base, 8, [4], [1])],
    ["h", tensor(storage("F16", "1", 5), 0, [5], [1])],
    ["bf", tensor(storage("BF16", "2", 4), 0, [2, 2], [2, 1])],
    ["i", tensor(storage("I64", "3", 2), 0, [2], [1])],
    ["b", tensor(storage("BOOL", "4", 1), 0, [1], [1])],
    ["s", tensor(storage("F32", "5", 1), 0, [], [])],
    ["p", tensor(storage("F32", "6", 2), 0, [2], [1])],
    ["e", tensor(storage("F32", "7", 0), 0, [0, 7], [7, 1])],
  ]);
  for (const [protocol, base64] of [[2, TORCH_2], [4, TORCH_4]] as const) {
    const got = readPickle(b64(base64), "data.pkl");
    assertEquals(got, expected, `protocol ${protocol}`);
  }
});

Deno.test("readPickle() refuses an opcode cut short in one line, whatever its operand's width", () => {
  for (
    const p of [
      bytes(0x80, 2, 0x4d, 1), // BININT2, 1 of 2 bytes
      bytes(0x80, 2, 0x4a, 1, 2, 3), // BININT, 3 of 4
      bytes(0x80, 2, 0x58, 1, 0, 0), // BINUNICODE's length, 3 of 4
      bytes(0x80, 2, 0x4e, 0x72, 1, 2, 3), // LONG_BINPUT, 3 of 4
      bytes(0x80, 4, 0x95, 1, 2, 3, 4, 5, 6, 7), // FRAME, 7 of 8
      bytes(0x80, 2, 0x47, 1, 2, 3, 4, 5, 6, 7), // BINFLOAT, 7 of 8
      bytes(0x80, 2, 0x8a, 2, 1), // LONG1, 1 of 2
    ]
  ) {
    assertThrows(
      () => readPickle(p, "x.bin"),
      InteropError,
      "x.bin: the pickle ends in the middle of an opcode",
    );
  }
});

Deno.test("readPickle() takes protocol 5 and a frame of 2^53 − 1 bytes, and refuses protocol 6 and 2^53", () => {
  assertEquals(readPickle(bytes(0x80, 5, 0x4e, 0x2e), "x.bin"), null);
  assertThrows(
    () => readPickle(bytes(0x80, 6, 0x4e, 0x2e), "x.bin"),
    InteropError,
    "a pickle protocol above 5",
  );
  const frame = (high: number) =>
    bytes(
      0x80,
      4,
      0x95,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      0xff,
      high,
      0,
      0x4e,
      0x2e,
    );
  assertEquals(readPickle(frame(0x1f), "x.bin"), null);
  assertThrows(
    () =>
      readPickle(
        bytes(0x80, 4, 0x95, 0, 0, 0, 0, 0, 0, 0x20, 0, 0x4e, 0x2e),
        "x.bin",
      ),
    InteropError,
    "a length beyond 2^53",
  );
});

Deno.test("readPickle() reads LONG1 integers of 0, 1 and 2 bytes in two's complement", () => {
  const long1 = (...b: number[]) =>
    readPickle(bytes(0x80, 2, 0x8a, b.length, ...b, 0x2e), "x.bin");
  assertEquals(long1(), 0);
  assertEquals(long1(0xff), -1);
  assertEquals(long1(0x7f), 127);
  assertEquals(long1(0x80), -128);
  assertEquals(long1(0x00, 0x80), -32768);
  assertEquals(long1(0xff, 0x00), 255);
});

Deno.test("readPickle() builds an OrderedDict from a list of pairs, refuses other items and odd SETITEMS", () => {
  const ordered = (...items: (number | string)[]) =>
    bytes(
      0x80,
      2,
      0x63,
      "collections\nOrderedDict\n",
      0x5d,
      0x28,
      ...items,
      0x65,
      0x85,
      0x52,
      0x2e,
    );
  assertEquals(
    readPickle(
      ordered(0x8c, 1, "a", 0x4b, 1, 0x86, 0x8c, 1, "b", 0x4b, 2, 0x86),
      "x.bin",
    ),
    new Map<PickleValue, PickleValue>([["a", 1], ["b", 2]]),
  );
  assertThrows(
    () => readPickle(ordered(0x8c, 1, "a", 0x4b, 1, 0x4b, 2, 0x87), "x.bin"),
    InteropError,
    "OrderedDict of non-pairs",
  );
  assertThrows(
    () => readPickle(bytes(0x80, 2, 0x7d, 0x28, 0x4b, 1, 0x75, 0x2e), "x.bin"),
    InteropError,
    "SETITEMS with an odd number of items",
  );
});

Deno.test("readPickle() reads _rebuild_tensor_v3's dtype, its 7th argument, and refuses a storage key that is not a string", () => {
  const storage = (key: (number | string)[]) => [
    0x28,
    0x8c,
    7,
    "storage",
    0x63,
    "torch\nbfloat16\n",
    ...key,
    0x8c,
    3,
    "cpu",
    0x4b,
    4,
    0x74,
    0x51,
  ];
  const v3 = (dtype: string) =>
    bytes(
      0x80,
      2,
      0x63,
      "torch._utils\n_rebuild_tensor_v3\n",
      0x28,
      ...storage([0x8c, 1, "0"]),
      0x4b,
      0, // offset
      0x4b,
      4,
      0x85, // size (4,)
      0x4b,
      1,
      0x85, // stride (1,)
      0x89, // requires_grad
      0x63,
      "collections\nOrderedDict\n",
      0x29,
      0x52, // backward hooks
      0x63,
      `torch\n${dtype}\n`,
      0x74,
      0x52,
      0x2e,
    );
  const t = readPickle(v3("float16"), "x.bin") as { dtype?: string };
  assertEquals(t.dtype, "F16");
  assertEquals((readPickle(v3("bfloat16"), "x.bin") as typeof t).dtype, "BF16");
  assertThrows(
    () => readPickle(v3("complex64"), "x.bin"),
    InteropError,
    "it names torch.complex64",
  );
  assertThrows(
    () =>
      readPickle(
        bytes(0x80, 2, ...storage([0x4b, 0]), 0x2e),
        "x.bin",
      ),
    InteropError,
    "a persistent id that is not a torch storage",
  );
});

Deno.test("readPickle() refuses near misses of a state dict's structure: torch-like modules, a stack left over, a MARK popped, fractional sizes, APPEND and BUILD on the wrong thing", () => {
  const refuse = (p: Uint8Array, message: string) =>
    assertThrows(() => readPickle(p, "x.bin"), InteropError, message);
  refuse(
    bytes(0x80, 2, 0x63, "torch.nn\nFloatStorage\n", 0x2e),
    "it names torch.nn.FloatStorage",
  );
  refuse(
    bytes(0x80, 2, 0x63, "torchvision\nfloat32\n", 0x2e),
    "it names torchvision.float32",
  );
  refuse(
    bytes(0x80, 2, 0x4e, 0x4e, 0x2e),
    "the pickle stops with a stack of 2",
  );
  refuse(bytes(0x80, 2, 0x28, 0x85, 0x2e), "the pickle pops an empty stack");
  const pid = (numel: number[]) => [
    0x28,
    0x8c,
    7,
    "storage",
    0x63,
    "torch\nFloatStorage\n",
    0x8c,
    1,
    "0",
    0x8c,
    3,
    "cpu",
    ...numel,
    0x74,
    0x51,
  ];
  const half = [0x47, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0]; // BINFLOAT 0.5
  const minusOne = [0x4a, 0xff, 0xff, 0xff, 0xff]; // BININT -1
  // What is accepted, and what was there: not "below 0" for a 0.5.
  const refused = (p: Uint8Array, message: string) =>
    assertEquals(
      assertThrows(() => readPickle(p, "x.bin"), InteropError).message,
      `x.bin: ${message}`,
    );
  refused(
    bytes(0x80, 2, ...pid(half), 0x2e),
    "a storage size that must be an integer ≥ 0, got 0.5",
  );
  refused(
    bytes(0x80, 2, ...pid(minusOne), 0x2e),
    "a storage size that must be an integer ≥ 0, got -1",
  );
  const rebuilt = (offset: (number | string)[]) =>
    bytes(
      0x80,
      2,
      0x63,
      "torch._utils\n_rebuild_tensor_v2\n",
      0x28,
      ...pid([0x4b, 4]),
      ...offset,
      0x4b,
      4,
      0x85,
      0x4b,
      1,
      0x85,
      0x89,
      0x4e,
      0x74,
      0x52,
      0x2e,
    );
  refused(
    rebuilt(half),
    "a tensor offset that must be an integer ≥ 0, got 0.5",
  );
  refused(
    rebuilt(minusOne),
    "a tensor offset that must be an integer ≥ 0, got -1",
  );
  refused(
    rebuilt([0x8c, 1, "4"]),
    'a tensor offset that must be an integer ≥ 0, got "4"',
  );
  refuse(
    bytes(0x80, 2, 0x7d, 0x4b, 1, 0x61, 0x2e),
    "APPEND to something not a list",
  );
  refuse(
    bytes(0x80, 2, 0x4b, 1, 0x4e, 0x62, 0x2e),
    "BUILD on something that is neither a dict nor a tensor",
  );
});
