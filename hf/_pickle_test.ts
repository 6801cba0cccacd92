import { assertEquals, assertThrows } from "@std/assert";
import { readPickle } from "./_pickle.ts";
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
