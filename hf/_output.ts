// Writing an export or an import: the whole directory is built under a
// temporary name beside the target and renamed into place, so a reader sees
// no directory or a complete one; an existing target is replaced only when
// forced. Weights are streamed into safetensors one tensor at a time.

import { pathExists, safetensorsHeaderBytes } from "@d3pm/core";
import { InteropError } from "./errors.ts";

/**
 * Refuse an existing target unless forced (checked before any work, and
 * again before the rename).
 */
export async function checkTarget(
  target: string,
  force: boolean,
  flag: string,
): Promise<void> {
  if (!force && await pathExists(target)) {
    throw new InteropError(
      `${target} already exists: pass --force to replace it, or choose another ${flag}`,
    );
  }
}

/**
 * Build a directory under a temporary name and move it to `target`. With
 * `force` an existing target is moved aside, replaced, then removed; a
 * failure removes the temporary directory and leaves the target as it was.
 */
export async function writeDirectory(
  target: string,
  options: { force: boolean; flag: string },
  fill: (dir: string) => Promise<void>,
): Promise<void> {
  await checkTarget(target, options.force, options.flag);
  const parent = target.includes("/")
    ? target.slice(0, target.lastIndexOf("/")) || "/"
    : ".";
  await Deno.mkdir(parent, { recursive: true });
  const temp = `${target}.${crypto.randomUUID()}.partial`;
  await Deno.mkdir(temp);
  try {
    await fill(temp);
    await checkTarget(target, options.force, options.flag);
    if (await pathExists(target)) {
      const aside = `${target}.${crypto.randomUUID()}.replaced`;
      await Deno.rename(target, aside);
      await Deno.rename(temp, target);
      await Deno.remove(aside, { recursive: true });
    } else {
      await Deno.rename(temp, target);
    }
  } catch (e) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw e;
  }
}

/** A tensor to stream: its name, shape, and its values when its turn comes. */
export interface OutTensor {
  /** Name. */
  name: string;
  /** Shape. */
  shape: number[];
  /** The values (float32, row-major). */
  values(): Float32Array | Promise<Float32Array>;
}

/**
 * Write float32 tensors as safetensors, each computed only when it is
 * written: memory holds one tensor at a time besides what the producers keep.
 */
export async function writeSafetensors(
  path: string,
  tensors: OutTensor[],
  metadata: Record<string, string>,
): Promise<void> {
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    const writeAll = async (bytes: Uint8Array) => {
      let at = 0;
      while (at < bytes.length) at += await file.write(bytes.subarray(at));
    };
    await writeAll(safetensorsHeaderBytes(tensors, metadata));
    for (const t of tensors) {
      const values = await t.values();
      const numel = t.shape.reduce((a, b) => a * b, 1);
      if (values.length !== numel) {
        throw new InteropError(
          `${t.name}: ${values.length} values for shape [${t.shape}]`,
        );
      }
      await writeAll(
        new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
      );
    }
    await file.syncData();
  } finally {
    file.close();
  }
}
