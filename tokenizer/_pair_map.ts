// An open-addressing hash map from a pair of token ids to an int32 value.
// `Map` with a number key would do, but `a * 65536 + b` leaves the small
// integer range for large vocabularies and then every lookup hashes a heap
// number; two Int32Array columns avoid that and allocate nothing per lookup.

function hash(a: number, b: number): number {
  return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) >>>
    0;
}

/** Pair of ids → value (≥ 0); `get` returns -1 for a missing pair. */
export class PairMap {
  #left: Int32Array;
  #right: Int32Array;
  #value: Int32Array;
  #mask: number;
  #size = 0;

  constructor(capacity = 16) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.#left = new Int32Array(cap).fill(-1);
    this.#right = new Int32Array(cap);
    this.#value = new Int32Array(cap);
    this.#mask = cap - 1;
  }

  /** Number of pairs stored. */
  get size(): number {
    return this.#size;
  }

  /** Value of the pair `(a, b)`, or -1. */
  get(a: number, b: number): number {
    const left = this.#left;
    const mask = this.#mask;
    let h = hash(a, b) & mask;
    while (true) {
      const l = left[h];
      if (l === -1) return -1;
      if (l === a && this.#right[h] === b) return this.#value[h];
      h = (h + 1) & mask;
    }
  }

  /** Sets the value of `(a, b)`; returns the previous value or -1. */
  set(a: number, b: number, value: number): number {
    if ((this.#size + 1) * 2 > this.#mask + 1) this.#grow();
    const left = this.#left;
    const mask = this.#mask;
    let h = hash(a, b) & mask;
    while (true) {
      const l = left[h];
      if (l === -1) {
        left[h] = a;
        this.#right[h] = b;
        this.#value[h] = value;
        this.#size++;
        return -1;
      }
      if (l === a && this.#right[h] === b) {
        const old = this.#value[h];
        this.#value[h] = value;
        return old;
      }
      h = (h + 1) & mask;
    }
  }

  #grow(): void {
    const left = this.#left;
    const right = this.#right;
    const value = this.#value;
    const cap = (this.#mask + 1) * 2;
    this.#left = new Int32Array(cap).fill(-1);
    this.#right = new Int32Array(cap);
    this.#value = new Int32Array(cap);
    this.#mask = cap - 1;
    this.#size = 0;
    for (let i = 0; i < left.length; i++) {
      if (left[i] !== -1) this.set(left[i], right[i], value[i]);
    }
  }
}
