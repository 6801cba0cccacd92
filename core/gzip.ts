/**
 * Reading gzip: one stream transform and one whole-buffer helper, used for
 * the embedded corpus, `.gz` user files and gzipped tokenizer files.
 *
 * @module
 */

/**
 * Gunzip a byte stream as it flows.
 *
 * @param stream Gzip bytes.
 * @returns The decompressed bytes; a corrupt stream errors when read.
 *
 * @example
 * ```ts
 * import { gunzipStream } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const gz = new Blob(["hello"]).stream().pipeThrough(new CompressionStream("gzip"));
 * assertEquals(await new Response(gunzipStream(gz)).text(), "hello");
 * ```
 */
export function gunzipStream(
  stream: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new DecompressionStream("gzip") as unknown as TransformStream<
      Uint8Array,
      Uint8Array
    >,
  );
}

/**
 * Gunzip a whole buffer.
 *
 * @param bytes Gzip bytes.
 * @returns The decompressed bytes.
 * @throws {TypeError} When `bytes` is not valid gzip.
 *
 * @example
 * ```ts
 * import { gunzip } from "@d3pm/core";
 * import { assertEquals } from "@std/assert";
 * const gz = await new Response(
 *   new Blob(["abc"]).stream().pipeThrough(new CompressionStream("gzip")),
 * ).bytes();
 * assertEquals(new TextDecoder().decode(await gunzip(gz)), "abc");
 * ```
 */
export async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
  return new Uint8Array(
    await new Response(gunzipStream(stream)).arrayBuffer(),
  );
}
