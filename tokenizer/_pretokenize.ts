// GPT-2 pre-tokenization without a regular expression.
//
// The pattern is
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with JavaScript's `u` flag: alternatives are tried in order, the classes
// work on code points (a lone surrogate is a code point of its own, neither
// letter, number nor space), and `\s` is JavaScript's white space set. A hand
// written scanner over char codes gives the same pieces several times faster
// than `String.prototype.matchAll`, which allocates a match array per piece.

/** Character classes of the pattern. */
export const LETTER = 1;
export const NUMBER = 2;
export const SPACE = 3;
export const OTHER = 4;

/** The GPT-2 pattern itself; the tests check the scanner against it. */
export const GPT2_PATTERN: RegExp =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const IS_LETTER = /^\p{L}$/u;
const IS_NUMBER = /^\p{N}$/u;
const IS_SPACE = /^\s$/u;

// Class of every code point, filled lazily (0 = not looked up yet): a regex
// test per distinct code point, then a table read.
const classes = new Uint8Array(0x110000);

function classify(cp: number): number {
  const s = String.fromCodePoint(cp);
  const k = IS_LETTER.test(s)
    ? LETTER
    : IS_NUMBER.test(s)
    ? NUMBER
    : IS_SPACE.test(s)
    ? SPACE
    : OTHER;
  classes[cp] = k;
  return k;
}

for (let c = 0; c < 128; c++) classify(c);

/** Class of the code point `cp`. */
export function classOf(cp: number): number {
  return classes[cp] || classify(cp);
}

// Class of the code point at `i` (a well-formed surrogate pair counts as one).
function classAt(text: string, i: number, n: number): number {
  const c = text.charCodeAt(i);
  if (c < 128) return classes[c];
  if ((c & 0xfc00) === 0xd800 && i + 1 < n) {
    const d = text.charCodeAt(i + 1);
    if ((d & 0xfc00) === 0xdc00) {
      const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
      return classes[cp] || classify(cp);
    }
  }
  return classes[c] || classify(c);
}

// End of the run of class `k` that starts at `i`.
function runEnd(text: string, i: number, n: number, k: number): number {
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c < 128) {
      if (classes[c] !== k) return i;
      i++;
      continue;
    }
    if ((c & 0xfc00) === 0xd800 && i + 1 < n) {
      const d = text.charCodeAt(i + 1);
      if ((d & 0xfc00) === 0xdc00) {
        const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
        if ((classes[cp] || classify(cp)) !== k) return i;
        i += 2;
        continue;
      }
    }
    if ((classes[c] || classify(c)) !== k) return i;
    i++;
  }
  return n;
}

/**
 * End (exclusive) of the GPT-2 piece that starts at `i` in `text[0, n)`.
 * `i` must be < `n`.
 */
export function pieceEnd(text: string, i: number, n: number): number {
  const c = text.charCodeAt(i);
  if (c === 39 && i + 1 < n) { // '
    const d = text.charCodeAt(i + 1);
    // s t m d
    if (d === 115 || d === 116 || d === 109 || d === 100) return i + 2;
    if (i + 2 < n) {
      const e = text.charCodeAt(i + 2);
      // re ve ll
      if ((e === 101 && (d === 114 || d === 118)) || (e === 108 && d === 108)) {
        return i + 3;
      }
    }
  }
  if (c === 32 && i + 1 < n) {
    const k = classAt(text, i + 1, n);
    if (k !== SPACE) return runEnd(text, i + 1, n, k);
  }
  const k = classAt(text, i, n);
  if (k !== SPACE) return runEnd(text, i, n, k);
  // \s+(?!\S) leaves the last space of a run to the next piece when a
  // non-space follows; a lone space before a non-space is \s+ on its own.
  const j = runEnd(text, i + 1, n, SPACE);
  return j < n && j - i >= 2 ? j - 1 : j;
}

/**
 * Writes the end of every piece of `text` from `start` into `ends` and
 * returns how many were written. `ends` needs room for `text.length - start`.
 *
 * With `final` false the text is a prefix of a longer stream: pieces whose
 * extent could still change with more text (those that end within one code
 * unit of the end) are left out, so the caller carries `text` from the last
 * written end (or `start`) into the next chunk.
 */
export function pieceEnds(
  text: string,
  start: number,
  final: boolean,
  ends: Int32Array,
): number {
  const n = text.length;
  const limit = final ? n : n - 2;
  let count = 0;
  let i = start;
  while (i < n) {
    const e = pieceEnd(text, i, n);
    if (e > limit) break;
    ends[count++] = e;
    i = e;
  }
  return count;
}
