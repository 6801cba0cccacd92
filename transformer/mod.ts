/**
 * Transformer backbones: causal decoder (AR) and bidirectional denoiser sharing one block.
 *
 * Not implemented yet: {@linkcode notImplemented} names the issue that will
 * build it.
 *
 * @module
 */

/**
 * Throws: this package is not built yet.
 *
 * @returns Never.
 */
export function notImplemented(): never {
  throw new Error(
    "@d3pm/transformer is not implemented yet (see the transformer issue)",
  );
}
