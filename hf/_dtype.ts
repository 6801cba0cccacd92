// Stored weights (little-endian bytes of one dtype) to float32: F32 as it
// is, F16 and BF16 exactly (every value of both is a float32), F64 rounded.
// Every value must be finite: a checkpoint holding NaN or ±∞ is refused,
// naming the tensor and the first bad index.

import { InteropError } from "./errors.ts";

/** The floating dtypes a weight may be stored in (safetensors names). */
export const FLOAT_DTYPES: readonly string[] = ["F32", "F16", "BF16", "F64"];

let halfTable: Float32Array | undefined;

// All 65,536 half-precision values, built once (256 KiB).
function halves(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    table[h] = exponent === 0
      ? sign * mantissa * 2 ** -24 // zero and subnormals
      : exponent === 31
      ? (mantissa ? NaN : sign * Infinity)
      : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return (halfTable = table);
}

/**
 * The values of one stored tensor as float32, checked finite.
 *
 * @param bytes The tensor's raw little-endian bytes (float32 ones are
 *   viewed, not copied: the caller hands them over).
 * @param dtype Its dtype (F32, F16, BF16 or F64).
 * @param what The tensor's name and file, for messages.
 * @returns The values.
 * @throws {InteropError} For another dtype, or a value that is not finite.
 */
export function toFloat32(
  bytes: Uint8Array,
  dtype: string,
  what: string,
): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let out: Float32Array;
  switch (dtype) {
    case "F32": {
      if (littleEndian() && bytes.byteOffset % 4 === 0) {
        // The bytes' own memory (a fresh read): no copy.
        out = new Float32Array(
          bytes.buffer,
          bytes.byteOffset,
          bytes.length / 4,
        );
        break;
      }
      out = new Float32Array(bytes.length / 4);
      for (let i = 0; i < out.length; i++) {
        out[i] = view.getFloat32(4 * i, true);
      }
      break;
    }
    case "F16": {
      const table = halves();
      out = new Float32Array(bytes.length / 2);
      for (let i = 0; i < out.length; i++) {
        out[i] = table[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
      }
      break;
    }
    case "BF16": {
      // bfloat16 is the top half of a float32.
      out = new Float32Array(bytes.length / 2);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < out.length; i++) {
        bits[i] = ((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16) >>> 0;
      }
      break;
    }
    case "F64": {
      out = new Float32Array(bytes.length / 8);
      for (let i = 0; i < out.length; i++) {
        out[i] = view.getFloat64(8 * i, true);
      }
      break;
    }
    default:
      throw new InteropError(
        `${what} has dtype ${dtype}; weights must be floating point (${
          FLOAT_DTYPES.join(", ")
        })`,
      );
  }
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) {
      const value = Number.isNaN(out[i])
        ? "NaN"
        : dtype === "F64"
        ? "a value beyond float32's range"
        : `${out[i]}`;
      throw new InteropError(
        `${what} holds ${value} at index ${i} (of ${out.length}); weights must be finite`,
      );
    }
  }
  return out;
}

let little: boolean | undefined;
function littleEndian(): boolean {
  return little ??= new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
}
