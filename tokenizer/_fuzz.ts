// Seeded generator of hostile text for the parity tests: random code points
// from every plane, emoji with ZWJ and modifiers, CJK, combining marks,
// control characters, long and mixed white space, lone surrogates, odd
// digits, contractions and special-token look-alikes.

const SPACES = [
  " ",
  " ",
  " ",
  "\t",
  "\n",
  "\r",
  "\r\n",
  "\v",
  "\f",
  "\u00a0",
  "\u1680",
  "\u2003",
  "\u2028",
  "\u2029",
  "\u202f",
  "\u3000",
  "\ufeff",
  "\u180e",
  "\u200b",
  "\x1c",
  "\x85",
];
const EMOJI = [
  "😀",
  "👍🏽",
  "👨‍👩‍👧‍👦",
  "🏳️‍🌈",
  "❤️",
  "🧑🏿‍🚀",
  "🇫🇷",
  "#️⃣",
  "\u200d",
  "\ufe0f",
];
const WORDS = [
  "the",
  "The",
  "don't",
  "I'm",
  "we're",
  "they've",
  "she'll",
  "he'd",
  "it's",
  "IT'S",
  "'s",
  "''",
  "'",
  "’s",
  "naïve",
  "Æsir",
  "İstanbul",
  "straße",
  "<|endoftext|>",
  "<|bos|>",
  "@-@",
  "@,@",
  " = = ",
  "1990s",
  "3.14",
  "٣٤",
  "１２",
  "²",
  "Ⅻ",
  "½",
  "x²",
  "...",
  "—",
  "«»",
];
const COMBINING = ["\u0301", "\u0308", "\u20dd", "\u0489", "\u093f", "\u05b7"];

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)];
}

function codePoint(rand: () => number): string {
  const r = rand();
  if (r < 0.3) return String.fromCharCode(0x20 + Math.floor(rand() * 0x5f));
  if (r < 0.4) return String.fromCharCode(Math.floor(rand() * 0x20)); // C0
  if (r < 0.45) return String.fromCharCode(0x7f + Math.floor(rand() * 0x21)); // DEL, C1
  if (r < 0.6) return String.fromCharCode(0x4e00 + Math.floor(rand() * 0x5200)); // CJK
  if (r < 0.7) return String.fromCharCode(0xac00 + Math.floor(rand() * 0x2ba4)); // Hangul
  if (r < 0.85) return String.fromCodePoint(Math.floor(rand() * 0xd800)); // BMP
  if (r < 0.9) {
    return String.fromCodePoint(0xe000 + Math.floor(rand() * 0x2000));
  }
  return String.fromCodePoint(0x10000 + Math.floor(rand() * 0x100000)); // astral
}

/**
 * A random string of about `length` code units.
 *
 * @param rand The PRNG.
 * @param length Rough length.
 * @param loneSurrogates Whether to put in unpaired surrogates.
 */
export function fuzzString(
  rand: () => number,
  length: number,
  loneSurrogates = true,
): string {
  let s = "";
  while (s.length < length) {
    const r = rand();
    if (r < 0.2) s += pick(rand, WORDS);
    else if (r < 0.35) s += pick(rand, SPACES);
    else if (r < 0.4) {
      // A run of white space, mostly spaces, sometimes long.
      const n = 1 + Math.floor(rand() * (rand() < 0.1 ? 300 : 8));
      for (let i = 0; i < n; i++) s += rand() < 0.7 ? " " : pick(rand, SPACES);
    } else if (r < 0.5) s += pick(rand, EMOJI);
    else if (r < 0.55) s += pick(rand, COMBINING);
    else if (r < 0.58 && loneSurrogates) {
      const hi = String.fromCharCode(0xd800 + Math.floor(rand() * 0x400));
      const lo = String.fromCharCode(0xdc00 + Math.floor(rand() * 0x400));
      s += pick(rand, [hi, lo, lo + hi, hi + " ", " " + lo]);
    } else if (r < 0.7) {
      const n = 1 + Math.floor(rand() * 12);
      for (let i = 0; i < n; i++) {
        s += String.fromCharCode(97 + Math.floor(rand() * 26));
      }
    } else s += codePoint(rand);
  }
  return s;
}
