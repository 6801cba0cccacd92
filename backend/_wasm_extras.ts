import * as tf from "@tensorflow/tfjs";
import { segmentSumValues } from "./_gather.ts";

interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

/**
 * Give tfjs-backend-wasm the `UnsortedSegmentSum` kernel it lacks (the
 * gradient of `gather`, so of every embedding), computed in JavaScript on the
 * wasm heap. Without it no model with an embedding trains on `wasm`.
 *
 * @returns The kernels added (none when wasm already has them).
 */
export function addWasmExtras(): string[] {
  if (tf.getKernel(tf.UnsortedSegmentSum, "wasm") !== undefined) return [];
  tf.registerKernel({
    kernelName: tf.UnsortedSegmentSum,
    backendName: "wasm",
    kernelFunc: ({ inputs, backend, attrs }) => {
      const wasm = backend as unknown as WasmBackend;
      const { x, segmentIds } = inputs as Record<string, tf.TensorInfo>;
      const { numSegments } = attrs as unknown as { numSegments: number };
      if (x.dtype !== "float32" && x.dtype !== "int32") {
        throw new TypeError(
          `Cannot run UnsortedSegmentSum on wasm for dtype ${x.dtype}: expected float32 or int32`,
        );
      }
      const shape = [numSegments, ...x.shape.slice(segmentIds.shape.length)];
      const out = wasm.makeOutput(shape, x.dtype);
      const outValues = wasm.typedArrayFromHeap(out) as Float32Array;
      outValues.fill(0);
      segmentSumValues(
        wasm.typedArrayFromHeap(x) as Float32Array,
        wasm.typedArrayFromHeap(segmentIds) as Int32Array,
        numSegments,
        outValues,
      );
      return out;
    },
  });
  return [tf.UnsortedSegmentSum];
}
