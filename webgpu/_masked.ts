// Masked-diffusion sampling on the engine: the kernels that decide, on the
// GPU, whether a step needs a forward pass (its block still holds masks and,
// when caching, some token changed since the last pass) and which drawn
// tokens a confidence-based step reveals. The draws themselves are the
// `categorical` kernel's (_sampling.ts). Private.

import { buffers, HEADER, INT } from "./_wgsl.ts";

/**
 * The sampling state after a plan's own ints: the block's mask count at
 * the last step, the passes run, the suppress list, the drawn proposals.
 */
export interface MaskedInts {
  count: number;
  passes: number;
  suppress: number;
  proposals: number;
  size: number;
}

/** Lay out the sampling state from `base` for N = B·L positions. */
export function maskedInts(base: number, n: number, maxSuppress: number) {
  const suppress = base + 2;
  const proposals = suppress + 1 + maxSuppress;
  return {
    count: base,
    passes: base + 1,
    suppress,
    proposals,
    size: proposals + n - base,
  };
}

const WG = 256;

// Count the masks of the block in every row (one workgroup), decide whether
// the step runs its forward pass, and write the indirect arguments of every
// gated dispatch (the template's, or zeros). It also lists the block's
// masked positions, in order (list[0] the count, list[1..] the positions),
// with the indirect arguments of a draw over just them after the gated
// ones (x = min(count, 65535), y = ⌈count/65535⌉, 1): a draw of one
// workgroup per position of the batch launched mostly workgroups with
// nothing to draw (3 blanks in 32: 29 in 32), the most expensive part of a
// step on a software adapter.
// a = (B, L, tokensOff, maskId), b = (blockStart, blockEnd, force, countOff),
// c = (argWords, cache, passesOff).
// Bindings: 6 ints; 4 the argument template, 5 the live arguments (u32),
// 2 the list (u32, 1 + B·span).
export const GATE = `${HEADER}
${
  buffers({
    6: INT,
    4: "tmpl: array<u32>",
    5: "args: array<u32>",
    2: "list: array<u32>",
  })
}
var<workgroup> red: array<u32, ${WG}>;
var<workgroup> cnt: u32;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) t: u32) {
  let L = u.a.y; let span = u.b.y - u.b.x;
  // Each thread a contiguous run of the block's positions, so the list
  // comes out in position order.
  let total = u.a.x * span;
  let per = (total + ${WG - 1}u) / ${WG}u;
  let i0 = min(t * per, total); let i1 = min(i0 + per, total);
  var n = 0u;
  for (var i = i0; i < i1; i++) {
    let p = (i / span) * L + u.b.x + i % span;
    if (ints[u.a.z + p] == i32(u.a.w)) { n += 1u; }
  }
  red[t] = n;
  workgroupBarrier();
  if (t == 0u) {
    // Exclusive prefix of the runs' counts, then the total.
    var a = 0u;
    for (var j = 0u; j < ${WG}u; j++) { let x = red[j]; red[j] = a; a += x; }
    list[0] = a;
    cnt = a;
  }
  workgroupBarrier();
  var at = 1u + red[t];
  for (var i = i0; i < i1; i++) {
    let p = (i / span) * L + u.b.x + i % span;
    if (ints[u.a.z + p] == i32(u.a.w)) { list[at] = p; at += 1u; }
  }
  let count = cnt;
  let prev = u32(ints[u.b.w]);
  let run = count > 0u && (u.c.y == 0u || u.b.z == 1u || count != prev);
  for (var j = t; j < u.c.x; j += ${WG}u) { args[j] = select(0u, tmpl[j], run); }
  if (t == 0u) {
    args[u.c.x] = min(count, 65535u);
    args[u.c.x + 1u] = (count + 65534u) / 65535u;
    args[u.c.x + 2u] = 1u;
  }
  storageBarrier();
  workgroupBarrier();
  if (t == 0u) {
    ints[u.b.w] = i32(count);
    if (run) { ints[u.c.z] += 1; }
  }
}
`;

/**
 * Confidence-based reveal for one row of a block (one workgroup per row):
 * of the m masked positions, the round(m·reveal) (all on the last step)
 * whose drawn token is most probable — ties to the lower position, as a
 * stable sort — take their proposal.
 * a = (L, tokensOff, proposalsOff, maskId), b = (blockStart, blockEnd,
 * reveal f32, last), c.x = confidenceOff. Bindings: 6 ints, 3 confidences.
 */
export function selectSource(length: number): string {
  return `${HEADER}
${buffers({ 6: INT, 3: "cnf: array<f32>" })}
var<workgroup> red: array<u32, ${WG}>;
var<workgroup> take: array<u32, ${length}>;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wg.x * u.a.x;
  let mask = i32(u.a.w);
  var m = 0u;
  for (var i = u.b.x + t; i < u.b.y; i += ${WG}u) {
    if (ints[u.a.y + row + i] == mask) { m += 1u; }
  }
  red[t] = m;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (t < k) { red[t] += red[t + k]; }
    workgroupBarrier();
  }
  let total = red[0];
  var n = total;
  if (u.b.w == 0u) { n = u32(floor(f32(total) * f(u.b.z) + 0.5)); }
  for (var i = u.b.x + t; i < u.b.y; i += ${WG}u) {
    take[i] = 0u;
    if (ints[u.a.y + row + i] != mask) { continue; }
    let ci = cnf[u.c.x + row + i];
    var rank = 0u;
    for (var j = u.b.x; j < u.b.y; j++) {
      if (ints[u.a.y + row + j] != mask) { continue; }
      let cj = cnf[u.c.x + row + j];
      if (cj > ci || (cj == ci && j < i)) { rank += 1u; }
    }
    if (rank < n) { take[i] = 1u; }
  }
  workgroupBarrier();
  storageBarrier();
  for (var i = u.b.x + t; i < u.b.y; i += ${WG}u) {
    if (take[i] == 1u) { ints[u.a.y + row + i] = ints[u.a.z + row + i]; }
  }
}
`;
}
