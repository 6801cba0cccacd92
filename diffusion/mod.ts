/**
 * Discrete diffusion: noise schedules, transitions, D3PM and MDLM losses, ELBO, samplers.
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
    "@d3pm/diffusion is not implemented yet (see the diffusion issue)",
  );
}
