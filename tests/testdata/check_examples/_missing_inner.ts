/** The unit circle, with no example: re-exported by `missing.ts`. */
export const UNIT_CIRCLE: { radius: number } = { radius: 1 };
