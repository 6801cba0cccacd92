// A pickle reader that runs no code: it interprets the opcodes a PyTorch
// state dict uses (protocols 2–5) and knows a short list of callables —
// OrderedDict, the tensor rebuilders, the storage and dtype names — as plain
// data. Any other global (os.system, builtins.eval, a model class, …) is
// refused by name before anything is called, like `torch.load(...,
// weights_only=True)`.

import { InteropError } from "./errors.ts";

/** A storage of a torch checkpoint: its dtype, record key and element count. */
export interface StorageRef {
  /** Discriminant. */
  kind: "storage";
  /** Its dtype (safetensors names). */
  dtype: string;
  /** The record `data/<key>` that holds it. */
  key: string;
  /** Its elements. */
  numel: number;
}

/** A tensor: a view of a storage. */
export interface TensorRef {
  /** Discriminant. */
  kind: "tensor";
  /** The storage it views. */
  storage: StorageRef;
  /** Its first element in the storage. */
  offset: number;
  /** Its dimensions. */
  shape: number[];
  /** Its strides, in elements. */
  stride: number[];
  /** Its dtype when it differs from the storage's (`_rebuild_tensor_v3`). */
  dtype?: string;
}

/** A value the reader produces. */
export type PickleValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | PickleValue[]
  | Map<PickleValue, PickleValue>
  | StorageRef
  | TensorRef
  | { kind: "global"; name: string };

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: "F32",
  HalfStorage: "F16",
  BFloat16Storage: "BF16",
  DoubleStorage: "F64",
  LongStorage: "I64",
  IntStorage: "I32",
  ShortStorage: "I16",
  CharStorage: "I8",
  ByteStorage: "U8",
  BoolStorage: "BOOL",
};

const TORCH_DTYPES: Record<string, string> = {
  float32: "F32",
  float: "F32",
  float16: "F16",
  half: "F16",
  bfloat16: "BF16",
  float64: "F64",
  double: "F64",
  int64: "I64",
  long: "I64",
  int32: "I32",
  int16: "I16",
  int8: "I8",
  uint8: "U8",
  bool: "BOOL",
};

/** The globals a state dict may name; everything else is refused. */
const CALLABLES = new Set([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor_v3",
  "torch._utils._rebuild_parameter",
]);

function allowed(name: string): boolean {
  if (CALLABLES.has(name)) return true;
  const [module, attr] = splitName(name);
  return module === "torch" &&
    (Object.hasOwn(STORAGE_DTYPES, attr) || Object.hasOwn(TORCH_DTYPES, attr));
}

function splitName(name: string): [string, string] {
  const dot = name.lastIndexOf(".");
  return [name.slice(0, dot), name.slice(dot + 1)];
}

const MARK = Symbol("mark");
type Slot = PickleValue | typeof MARK;

/**
 * Read a pickle of a state dict without running any of its code.
 *
 * @param bytes The pickle (`data.pkl` of a torch zip archive).
 * @param source The file's name for messages.
 * @returns The unpickled value.
 * @throws {InteropError} For an opcode or a global outside what a state dict
 *   uses, or a malformed pickle.
 */
export function readPickle(bytes: Uint8Array, source: string): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const text = new TextDecoder("utf-8", { fatal: false });
  const stack: Slot[] = [];
  const memo = new Map<number, PickleValue>();
  let p = 0;
  const fail = (why: string): never => {
    throw new InteropError(`${source}: ${why}`);
  };
  const need = (n: number) => {
    if (p + n > bytes.length) {
      fail("the pickle ends in the middle of an opcode");
    }
  };
  const u8 = () => (need(1), bytes[p++]);
  const u16 = () => (need(2), p += 2, view.getUint16(p - 2, true));
  const u32 = () => (need(4), p += 4, view.getUint32(p - 4, true));
  const i32 = () => (need(4), p += 4, view.getInt32(p - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(p, true);
    p += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail("a length beyond 2^53");
    return Number(v);
  };
  const take = (n: number) => (need(n), p += n, bytes.subarray(p - n, p));
  const line = () => {
    const end = bytes.indexOf(0x0a, p);
    if (end < 0) fail("a GLOBAL opcode without its newline");
    const s = text.decode(bytes.subarray(p, end));
    p = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || v === MARK) fail("the pickle pops an empty stack");
    return v as PickleValue;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail("the pickle reads an empty stack");
    return v as PickleValue;
  };
  const popMark = (): PickleValue[] => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) fail("the pickle has no MARK where one is needed");
    const items = stack.splice(at) as Slot[];
    return items.slice(1) as PickleValue[];
  };
  const global = (name: string): PickleValue => {
    if (!allowed(name)) {
      fail(
        `it names ${name}, which a state dict does not use; only tensors, their storages and OrderedDict are read (no pickled code is run)`,
      );
    }
    return { kind: "global", name };
  };
  const setItems = (target: PickleValue, items: PickleValue[]) => {
    if (!(target instanceof Map)) fail("SETITEMS on something not a dict");
    if (items.length % 2) fail("SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) {
      (target as Map<PickleValue, PickleValue>).set(items[i], items[i + 1]);
    }
  };
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("a pickle protocol above 5");
        break;
      case 0x95: // FRAME (a length hint)
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) {
          fail("the pickle stops with a stack of " + stack.length);
        }
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        stack.pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: { // LONG1
        const n = u8();
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        if (
          v > BigInt(Number.MAX_SAFE_INTEGER) ||
          -v > BigInt(Number.MAX_SAFE_INTEGER)
        ) {
          fail("an integer beyond 2^53");
        }
        stack.push(Number(v));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(p, false));
        p += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(text.decode(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text.decode(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(text.decode(take(u64())));
        break;
      case 0x54: // BINSTRING
        stack.push(text.decode(take(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(text.decode(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(take(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(take(u8()).slice());
        break;
      case 0x5d: // EMPTY_LIST
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x6c: // LIST
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: { // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: { // TUPLE3
        const c = pop(), b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x61: { // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) fail("APPEND to something not a list");
        (list as PickleValue[]).push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) fail("APPENDS to something not a list");
        // One at a time: a spread of many items overflows the call stack.
        for (const item of items) (list as PickleValue[]).push(item);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: { // DICT
        const m = new Map<PickleValue, PickleValue>();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x73: { // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        stack.push(global(`${module}.${line()}`));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof name !== "string" || typeof module !== "string") {
          fail("STACK_GLOBAL without two strings");
        }
        stack.push(global(`${module}.${name}`));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        stack.push(call(pop(), args, fail));
        break;
      }
      case 0x62: { // BUILD: state on an OrderedDict (its _metadata) or a tensor
        pop();
        const target = top();
        if (
          !(target instanceof Map) &&
          !(typeof target === "object" && target !== null &&
            "kind" in target && target.kind === "tensor")
        ) fail("BUILD on something that is neither a dict nor a tensor");
        break;
      }
      case 0x51: // BINPERSID
        stack.push(persistent(pop(), fail));
        break;
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) {
          fail(`a memo reference ${key} that was never stored`);
        }
        stack.push(memo.get(key)!);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      default:
        fail(
          `opcode 0x${op.toString(16).padStart(2, "0")} at byte ${
            p - 1
          } is not one a state dict uses; only tensors, their storages and OrderedDict are read (no pickled code is run)`,
        );
    }
  }
}

function persistent(
  pid: PickleValue,
  fail: (why: string) => never,
): StorageRef {
  if (
    !Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage" ||
    typeof pid[2] !== "string" || typeof pid[4] !== "number"
  ) fail("a persistent id that is not a torch storage");
  const type = (pid as PickleValue[])[1] as { kind?: string; name?: string };
  const attr = type?.kind === "global" ? splitName(type.name!)[1] : "";
  const dtype = STORAGE_DTYPES[attr] ?? TORCH_DTYPES[attr];
  if (!dtype) fail(`a storage of type ${attr || "?"}`);
  const numel = (pid as PickleValue[])[4] as number;
  if (!Number.isSafeInteger(numel) || numel < 0) {
    fail(`a storage size that must be an integer ≥ 0, got ${shown(numel)}`);
  }
  return {
    kind: "storage",
    dtype,
    key: (pid as PickleValue[])[2] as string,
    numel,
  };
}

/** A pickled value as a refusal names it: a number or short string itself. */
function shown(v: PickleValue | undefined): string {
  if (typeof v === "number") return String(v);
  if (typeof v === "string") return JSON.stringify(v.slice(0, 40));
  if (v === null || v === undefined) return "None";
  if (typeof v === "boolean") return v ? "True" : "False";
  if (v instanceof Uint8Array) return "bytes";
  if (Array.isArray(v)) return "a tuple";
  return v instanceof Map ? "a dict" : `a ${v.kind}`;
}

function intList(
  v: PickleValue,
  what: string,
  fail: (w: string) => never,
): number[] {
  if (
    !Array.isArray(v) ||
    !v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)
  ) {
    fail(`a tensor whose ${what} is not a tuple of integers ≥ 0`);
  }
  return v as number[];
}

function call(
  callee: PickleValue,
  args: PickleValue,
  fail: (why: string) => never,
): PickleValue {
  if (
    typeof callee !== "object" || callee === null || !("kind" in callee) ||
    callee.kind !== "global" || !Array.isArray(args)
  ) fail("REDUCE on something that is not a known callable");
  const name = (callee as { name: string }).name;
  const a = args as PickleValue[];
  switch (name) {
    case "collections.OrderedDict": {
      const m = new Map<PickleValue, PickleValue>();
      if (a.length === 1 && Array.isArray(a[0])) {
        for (const pair of a[0] as PickleValue[]) {
          if (!Array.isArray(pair) || pair.length !== 2) {
            fail("OrderedDict of non-pairs");
          }
          m.set((pair as PickleValue[])[0], (pair as PickleValue[])[1]);
        }
      }
      return m;
    }
    case "torch._utils._rebuild_tensor_v2":
    case "torch._utils._rebuild_tensor_v3": {
      const storage = a[0] as StorageRef;
      if (storage?.kind !== "storage") {
        fail("a tensor rebuilt from something not a storage");
      }
      const offset = a[1];
      if (!Number.isSafeInteger(offset) || (offset as number) < 0) {
        fail(
          `a tensor offset that must be an integer ≥ 0, got ${shown(offset)}`,
        );
      }
      const tensor: TensorRef = {
        kind: "tensor",
        storage,
        offset: offset as number,
        shape: intList(a[2], "size", fail),
        stride: intList(a[3], "stride", fail),
      };
      if (name.endsWith("v3")) {
        const d = a[6] as { kind?: string; name?: string };
        const dtype = d?.kind === "global"
          ? TORCH_DTYPES[splitName(d.name!)[1]]
          : undefined;
        if (!dtype) fail("a tensor of an unknown dtype");
        tensor.dtype = dtype;
      }
      return tensor;
    }
    case "torch._utils._rebuild_parameter":
      return a[0]; // a Parameter is its data
    default:
      return fail(`${name} cannot be called`);
  }
}
