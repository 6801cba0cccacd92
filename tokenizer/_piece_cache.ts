// A cache from a piece of text to its token ids that is looked up with
// `(text, start, end)`, so a hit allocates nothing: `Map.get(text.slice())`
// costs a string allocation and a fresh hash per piece, which was over half
// of the encode time. Keys live as UTF-16 code units in one pool, values as
// ids in another; the table is open addressing with linear probing.

/** Hash of `text[start, end)` (FNV-1a over code units). */
export function pieceHash(text: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return h | 0;
}

/** Piece text → ids, holding at most `capacity` pieces (then it starts afresh). */
export class PieceCache {
  readonly capacity: number;
  #mask: number;
  #hash: Int32Array;
  #keyAt: Int32Array; // -1 = empty slot
  #keyLen: Int32Array;
  #value: Int32Array; // id ≥ 0, or -(offset + 1) into #ids: [count, ...ids]
  #keys = new Uint16Array(1 << 16);
  #keysLen = 0;
  #ids = new Int32Array(1 << 14);
  #idsLen = 0;
  #size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    const slots = 1024;
    this.#mask = slots - 1;
    this.#hash = new Int32Array(slots);
    this.#keyAt = new Int32Array(slots).fill(-1);
    this.#keyLen = new Int32Array(slots);
    this.#value = new Int32Array(slots);
  }

  /** Number of pieces held. */
  get size(): number {
    return this.#size;
  }

  /** Slot of `text[start, end)` with hash `h`, or -1 when absent. */
  find(text: string, start: number, end: number, h: number): number {
    const len = end - start;
    const mask = this.#mask;
    const keyAt = this.#keyAt;
    const keys = this.#keys;
    let s = h & mask;
    while (true) {
      const at = keyAt[s];
      if (at < 0) return -1;
      if (this.#hash[s] === h && this.#keyLen[s] === len) {
        let k = 0;
        while (k < len && keys[at + k] === text.charCodeAt(start + k)) k++;
        if (k === len) return s;
      }
      s = (s + 1) & mask;
    }
  }

  /** The value at a slot `find` returned: an id (≥ 0) or a pool reference. */
  value(slot: number): number {
    return this.#value[slot];
  }

  /** The pool of multi-id values: at `-(value) - 1`, a count then the ids. */
  get pool(): Int32Array {
    return this.#ids;
  }

  /**
   * Stores `ids[0, n)` for `text[start, end)` (which `find` did not find).
   * When the cache is full it is emptied first.
   */
  insert(
    text: string,
    start: number,
    end: number,
    h: number,
    ids: Int32Array,
    n: number,
  ): void {
    if (this.#size >= this.capacity) this.clear();
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#grow();
    const mask = this.#mask;
    let slot = h & mask;
    while (this.#keyAt[slot] >= 0) slot = (slot + 1) & mask;
    const len = end - start;
    if (this.#keysLen + len > this.#keys.length) {
      const bigger = new Uint16Array(
        Math.max(this.#keys.length * 2, this.#keysLen + len),
      );
      bigger.set(this.#keys.subarray(0, this.#keysLen));
      this.#keys = bigger;
    }
    const keys = this.#keys;
    const at = this.#keysLen;
    for (let k = 0; k < len; k++) keys[at + k] = text.charCodeAt(start + k);
    this.#keysLen += len;
    let value: number;
    if (n === 1) value = ids[0];
    else {
      if (this.#idsLen + n + 1 > this.#ids.length) {
        const bigger = new Int32Array(
          Math.max(this.#ids.length * 2, this.#idsLen + n + 1),
        );
        bigger.set(this.#ids.subarray(0, this.#idsLen));
        this.#ids = bigger;
      }
      value = -this.#idsLen - 1;
      this.#ids[this.#idsLen] = n;
      this.#ids.set(ids.subarray(0, n), this.#idsLen + 1);
      this.#idsLen += n + 1;
    }
    this.#hash[slot] = h;
    this.#keyAt[slot] = at;
    this.#keyLen[slot] = len;
    this.#value[slot] = value;
    this.#size++;
  }

  #grow(): void {
    const hash = this.#hash;
    const keyAt = this.#keyAt;
    const keyLen = this.#keyLen;
    const value = this.#value;
    const slots = (this.#mask + 1) * 2;
    const mask = slots - 1;
    this.#mask = mask;
    this.#hash = new Int32Array(slots);
    this.#keyAt = new Int32Array(slots).fill(-1);
    this.#keyLen = new Int32Array(slots);
    this.#value = new Int32Array(slots);
    for (let i = 0; i < keyAt.length; i++) {
      if (keyAt[i] < 0) continue;
      let s = hash[i] & mask;
      while (this.#keyAt[s] >= 0) s = (s + 1) & mask;
      this.#hash[s] = hash[i];
      this.#keyAt[s] = keyAt[i];
      this.#keyLen[s] = keyLen[i];
      this.#value[s] = value[i];
    }
  }

  /** Forgets every piece (and gives back the table's memory). */
  clear(): void {
    this.#mask = 1023;
    this.#hash = new Int32Array(1024);
    this.#keyAt = new Int32Array(1024).fill(-1);
    this.#keyLen = new Int32Array(1024);
    this.#value = new Int32Array(1024);
    this.#keysLen = 0;
    this.#idsLen = 0;
    this.#size = 0;
  }
}
