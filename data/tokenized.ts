/**
 * Tokenizing a corpus once, and caching the ids in a binary file keyed by the
 * corpus file's SHA-256, the tokenizer's identity and, for plain text, the
 * `text` layout (its documents are cut otherwise than WikiText's).
 *
 * Cache file layout (all little-endian):
 * `"D3PMTOK1"` (8 bytes) · header length `n` (u32) · JSON header (`n` bytes) ·
 * document offsets (u32 × (numDocs + 1)) · ids (u16 or u32 × numTokens).
 * The header holds the corpus hash, tokenizer id, counts, id width and the
 * SHA-256 of everything after it; any mismatch marks the cache stale or
 * corrupt, and it is rebuilt.
 *
 * @module
 */
import {
  bootTime,
  BoundedReadError,
  createSha256,
  isProcessAlive,
  type markHost,
  readHeadBounded,
  sha256Hex,
  thisProcess,
  writeFileAtomic,
} from "@d3pm/core";
import { DataError } from "./errors.ts";
import type { Tokenizer } from "@d3pm/tokenizer";
import {
  type CorpusSource,
  fileName,
  isGzipHead,
  layoutSuffix,
  openBytes,
  readArticles,
} from "./wikitext.ts";
import type { ReadProgress } from "./wikitext.ts";

/** A tokenized corpus: the ids of all documents, back to back. */
export interface TokenizedCorpus {
  /** Token ids of every document, concatenated (no separators). */
  ids: Uint32Array;
  /** Document `d` is `ids.subarray(docOffsets[d], docOffsets[d + 1])`. */
  docOffsets: Uint32Array;
}

/** Options of {@linkcode tokenizeCorpus}. */
export interface TokenizeOptions {
  /** Directory for cache files; no caching when absent. */
  cacheDir?: string;
  /** The source's SHA-256 when the caller already has it (saves a read). */
  corpusSha256?: string;
  /** Progress of reading the corpus (see {@linkcode readLines}). */
  onProgress?: ((p: ReadProgress) => void) | false;
  /**
   * Called with a one-line message when a cache is stale or corrupt, and
   * once when the corpus is not valid UTF-8 (with the count of invalid byte
   * sequences). The default prints `warning: …` to stderr.
   */
  onWarning?: (message: string) => void;
  /**
   * Spare ids per document after the corpus in its ids' buffer (default
   * 0): with 2, {@linkcode packBlocks} can wrap every document in bos/eos
   * in place (its `inPlace`), holding the ids once.
   */
  room?: number;
  /**
   * Called with the count of ids before their buffer is allocated: from the
   * cache's header (or, without a cache, once the documents are tokenized),
   * so that a caller can check its memory budget before a corpus too large
   * for it is read. It refuses by throwing; the error is thrown as it is.
   */
  beforeHolding?: (ids: number) => void;
}

const MAGIC = "D3PMTOK1";
/** The most bytes a cache's JSON header may hold. */
const MAX_HEADER = 1 << 20;

interface CacheHeader {
  version: 1;
  corpusSha256: string;
  tokenizerId: string;
  numDocs: number;
  numTokens: number;
  idBytes: 2 | 4;
  payloadSha256: string;
}

/**
 * SHA-256 of a source's stored bytes, streamed.
 *
 * @param source The corpus.
 * @returns Lower-case hex digest of the bytes as stored (compressed, for a
 * `.gz` file).
 *
 * @example
 * ```ts
 * import { sha256OfSource } from "@d3pm/data";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/wiki.valid.raw`, "abc");
 * const source = { url: `file://${dir}/wiki.valid.raw`, split: "valid", layout: "raw", gzip: false } as const;
 * assertEquals(
 *   await sha256OfSource(source),
 *   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", // SHA-256("abc")
 * );
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function sha256OfSource(source: CorpusSource): Promise<string> {
  const hash = createSha256();
  const { stream } = await openBytes(source);
  const head: number[] = [];
  for await (const chunk of stream) {
    for (let i = 0; head.length < 2 && i < chunk.length; i++) {
      head.push(chunk[i]);
    }
    hash.update(chunk);
  }
  // The caches are keyed by this hash of the stored bytes: bytes read as
  // gzip must be gzip, and plain ones not (a file swapped after findCorpus
  // checked it, or a source made by hand, would share a cache read the
  // other way).
  if (head.length > 0 && isGzipHead(head) !== source.gzip) {
    const name = source.url.startsWith("file:")
      ? fileName(source)
      : `${source.url} (a server's Content-Encoding: gzip is undone by fetch)`;
    throw new DataError(
      `Corpus ${name} is ${
        source.gzip ? "marked gzip but does not" : "marked plain but does"
      } start with the gzip bytes 1f 8b: expected gzip exactly for a name ending in .gz`,
    );
  }
  return hash.hex();
}

/**
 * Tokenize every article of a corpus (see {@linkcode readArticles}); with
 * `cacheDir`, reuse the ids from an earlier run when the corpus file and the
 * tokenizer are unchanged.
 *
 * @param source The corpus.
 * @param tokenizer Any tokenizer.
 * @param options Cache directory, progress and warnings.
 * @returns The ids and document offsets.
 *
 * @example
 * ```ts
 * import { tokenizeCorpus } from "@d3pm/data";
 * import { ByteTokenizer } from "@d3pm/tokenizer";
 * import { assertEquals } from "@std/assert";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/wiki.test.raw`, " = A = \n x \n = B = \n");
 * const source = { url: `file://${dir}/wiki.test.raw`, split: "test", layout: "raw", gzip: false } as const;
 * const corpus = await tokenizeCorpus(source, new ByteTokenizer(), { cacheDir: dir });
 * assertEquals(Array.from(corpus.docOffsets), [0, 12, 20]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function tokenizeCorpus(
  source: CorpusSource,
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): Promise<TokenizedCorpus> {
  const warn = options.onWarning ??
    ((m: string) => console.error(`warning: ${m}`));
  const room = options.room ?? 0;
  let cachePath: string | undefined;
  let corpusSha256 = "";
  if (options.cacheDir) {
    corpusSha256 = options.corpusSha256 ?? await sha256OfSource(source);
    const tokSha = sha256Hex(tokenizer.id);
    // Plain text is cut into documents otherwise than WikiText (no titles):
    // the same bytes under another layout have their own cache file.
    cachePath = `${options.cacheDir}/${corpusSha256.slice(0, 16)}-${
      tokSha.slice(0, 16)
    }${layoutSuffix(source.layout)}.tok`;
    const cached = await readCache(cachePath, corpusSha256, tokenizer, {
      warn,
      room,
      beforeHolding: options.beforeHolding,
    });
    if (cached) return cached;
  }
  if (!cachePath) {
    const docs: Uint32Array[] = [];
    const shape = await tokenizeArticles(source, tokenizer, options, (d) => {
      docs.push(d);
    });
    options.beforeHolding?.(shape.numTokens);
    return joinPieces({ ...shape, docs }, room);
  }
  // Written to the cache as they are made, then read back into one buffer
  // of the exact size: the ids are held once, never also as pieces.
  const numTokens = await tokenizeToCache(source, tokenizer, {
    ...options,
    path: cachePath,
    corpusSha256,
  });
  const cached = await readCache(cachePath, corpusSha256, tokenizer, {
    warn,
    room,
    beforeHolding: options.beforeHolding,
  });
  if (!cached || cached.ids.length !== numTokens) {
    throw new DataError(
      `Token cache ${cachePath} did not read back as written (${numTokens} ids): check the disk, or delete it and run again`,
    );
  }
  return cached;
}

/** Where a corpus's documents begin and end, and its count of ids. */
interface CorpusShape {
  docOffsets: Uint32Array;
  numTokens: number;
}

/**
 * A corpus's ids as the tokenizer gave them, a typed array per document
 * (never copied into a growing buffer: its doublings and final copy held
 * the ids up to three times over).
 */
interface IdPieces extends CorpusShape {
  docs: Uint32Array[];
}

/**
 * Tokenize a corpus into its cache file: each document's ids go to a
 * temporary file as they are made (at the cache's width), then the cache is
 * written from it (its header's checksum covers the offsets, known only at
 * the end, before the ids). Returns the count of ids.
 */
async function tokenizeToCache(
  source: CorpusSource,
  tokenizer: Tokenizer,
  options: TokenizeOptions & { path: string; corpusSha256: string },
): Promise<number> {
  const { path } = options;
  const idBytes = tokenizer.vocabSize <= 65536 ? 2 : 4;
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")) || ".", {
    recursive: true,
  });
  // A Ctrl-C exits without the finally below, leaving a temporary as large
  // as the cache: each names its writer, and those of a gone one are
  // removed before writing anew (a live writer's, another run tokenizing
  // the same corpus, are left).
  await removeDeadTemps(path);
  const tag = writerTag();
  const tmp = `${path}.${tag}.${crypto.randomUUID()}.tmp`;
  // Writing and reading back the temporary, then the cache: a failure
  // (a full disk, the temporary removed by another process) is one line
  // naming both files, not "No space left on device (os error 28)".
  const io = <T>(step: () => Promise<T>): Promise<T> =>
    step().catch((e) => cannotWriteCache(path, tmp, e));
  try {
    let shape: CorpusShape;
    {
      using ids = await io(() =>
        Deno.open(tmp, { write: true, createNew: true })
      );
      shape = await tokenizeArticles(source, tokenizer, options, async (d) => {
        for (const part of narrowed(d, idBytes)) {
          await io(() => writeAll(ids, part));
        }
      });
    }
    const offsets = new Uint8Array(shape.docOffsets.buffer);
    const hash = createSha256().update(offsets);
    await io(async () => {
      for await (const chunk of fileChunks(tmp)) hash.update(chunk);
    });
    const header: CacheHeader = {
      version: 1,
      corpusSha256: options.corpusSha256,
      tokenizerId: tokenizer.id,
      numDocs: shape.docOffsets.length - 1,
      numTokens: shape.numTokens,
      idBytes,
      payloadSha256: hash.hex(),
    };
    const headerBytes = new TextEncoder().encode(JSON.stringify(header));
    const head = new Uint8Array(12 + headerBytes.length);
    head.set(new TextEncoder().encode(MAGIC), 0);
    new DataView(head.buffer).setUint32(8, headerBytes.length, true);
    head.set(headerBytes, 12);
    await io(() =>
      writeFileAtomic(
        path,
        (async function* () {
          yield head;
          yield offsets;
          yield* fileChunks(tmp);
        })(),
        { tag },
      )
    );
    return shape.numTokens;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}

/**
 * A failed write or read-back of a token cache, as one line naming it and
 * its temporary: a temporary that vanished (`NotFound` on reopening it) was
 * removed by another process sharing the cache's folder.
 */
async function cannotWriteCache(
  path: string,
  tmp: string,
  e: unknown,
): Promise<never> {
  if (e instanceof DataError) throw e;
  const gone = e instanceof Deno.errors.NotFound &&
    !await Deno.stat(tmp).then(() => true, () => false);
  const why = gone
    ? "the temporary file vanished while it was written (another process sharing the folder removed it: a run of an older version on another host, or a cleaner); run again"
    : (e instanceof Error ? e.message : String(e)).split("\n")[0]
      .replace(`Cannot write ${path}: `, "").replace(/: \w+ '.*'$/, "");
  throw new DataError(
    `Cannot write token cache ${path} (temporary ${tmp}): ${why}`,
  );
}

/**
 * This process in a temporary file's name:
 * `pid<pid>[-<start>][-ns<inode>][-h<host>]`, the inode of its pid namespace
 * (`/proc/self/ns/pid`, `pid:[<inode>]`) and its host ({@linkcode hostTag}):
 * every Linux host's first pid namespace has the same inode, so without the
 * host a cluster node sharing the cache took another node's live writer for
 * its own gone one.
 */
function writerTag(): string {
  const { pid, start, ns, host, hostname } = thisProcess();
  const inode = ns === undefined ? undefined : /\[(\d+)\]/.exec(ns)?.[1];
  const tagged = host !== undefined || hostname !== undefined;
  return `pid${pid}${start === undefined ? "" : `-${start}`}${
    inode === undefined ? "" : `-ns${inode}`
  }${tagged ? `-h${hostTag(hostname)}${hostTag(host)}` : ""}`;
}

/** What a host's name or boot left unknown is tagged with. */
const UNKNOWN_HOST = "00000000";

/**
 * A host's name or boot in a temporary file's name: 8 hex digits of its
 * SHA-256 (it may hold any character), {@linkcode UNKNOWN_HOST} where
 * unknown. The tag is the name's then the boot's: 16 hex digits.
 */
function hostTag(part: string | undefined): string {
  return part === undefined ? UNKNOWN_HOST : sha256Hex(part).slice(0, 8);
}

/**
 * A temporary file of `<cache>`:
 * `<cache>.pid<pid>[-<start>][-ns<inode>][-h<host>].<uuid>.tmp`.
 */
const WRITER_TEMP =
  /^(.*)\.pid(\d+)(?:-(\d+))?(?:-ns(\d+))?(?:-h([0-9a-f]{16}))?\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/;

/**
 * Where a temporary file's writer ran, from its host tag (as
 * {@linkcode markHost} judges a mark): `"another"` (another host name: its
 * pid names nothing here), `"earlier boot"` (this host's name, another boot:
 * gone), `"unknown"` (another boot, a name unknown), `"this"` (otherwise,
 * and a temp without a host tag: the previous version's, taken to be this
 * host's as an untagged lock is).
 */
function tempHost(tag: string | undefined): ReturnType<typeof markHost> {
  if (tag === undefined) return "this";
  const { host, hostname } = thisProcess();
  // Written by a development version (16 hex of the boot id's or name's
  // SHA-256): this host's when it is ours.
  for (const id of [host, hostname]) {
    if (id !== undefined && tag === sha256Hex(id).slice(0, 16)) return "this";
  }
  const [name, boot] = [tag.slice(0, 8), tag.slice(8)];
  const names = name !== UNKNOWN_HOST && hostname !== undefined;
  if (names && name !== hostTag(hostname)) return "another";
  if (boot === UNKNOWN_HOST || host === undefined) return "this";
  if (boot === hostTag(host)) return "this";
  return names ? "earlier boot" : "unknown";
}

// Whether a file was last written since this host booted (unknown: yes).
function writtenSinceBoot(path: string): boolean {
  const booted = bootTime();
  try {
    const written = Deno.statSync(path).mtime?.getTime();
    return booted === undefined || written === undefined || written >= booted;
  } catch {
    return true;
  }
}

/**
 * Remove the temporary files of the cache at `path` whose writer is gone
 * (killed mid-tokenization, or its host rebooted since). A temp of this
 * host's name and another boot is removed (a reboot ended its writer); one
 * of another host (a cluster node sharing the cache) or that cannot be
 * placed is kept; the rest — this host's, or without a host tag (the
 * previous version's) — are judged by their pid namespace (another's, a
 * container's, or none recorded: kept) and /proc. Returns the paths
 * removed.
 */
async function removeDeadTemps(path: string): Promise<string[]> {
  const cut = path.lastIndexOf("/");
  const dir = cut < 0 ? "." : path.slice(0, cut) || "/";
  const name = path.slice(cut + 1);
  const { ns } = thisProcess();
  const removed: string[] = [];
  for (const e of [...Deno.readDirSync(dir)]) {
    const m = WRITER_TEMP.exec(e.name);
    if (!e.isFile || !m || m[1] !== name) continue;
    const host = tempHost(m[5]);
    if (host === "another" || host === "unknown") continue;
    // Another boot of this host's name, written since this host booted:
    // another machine of the same name (a cloned image), kept.
    if (host === "earlier boot" && writtenSinceBoot(`${dir}/${e.name}`)) {
      continue;
    }
    if (host === "this") {
      if (ns === undefined || ns !== `pid:[${m[4]}]`) continue;
      const mark = { pid: Number(m[2]), ...(m[3] ? { start: m[3] } : {}), ns };
      if (isProcessAlive(mark)) continue;
    }
    const temp = `${dir}/${e.name}`;
    await Deno.remove(temp).then(() => removed.push(temp), () => {});
  }
  return removed;
}

/** A document's ids at `idBytes` each (little-endian), in parts of CHUNK_IDS. */
function* narrowed(doc: Uint32Array, idBytes: 2 | 4): Generator<Uint8Array> {
  const narrow = new Uint16Array(Math.min(CHUNK_IDS, doc.length));
  for (let at = 0; at < doc.length; at += CHUNK_IDS) {
    const part = doc.subarray(at, Math.min(doc.length, at + CHUNK_IDS));
    if (idBytes === 4) {
      yield new Uint8Array(part.buffer, part.byteOffset, part.byteLength);
    } else {
      const n = narrow.subarray(0, part.length);
      n.set(part);
      yield new Uint8Array(n.buffer, 0, n.byteLength);
    }
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await file.write(bytes.subarray(at));
}

/**
 * A file's bytes in parts of 4 MiB, each in the same buffer (valid until
 * the next is asked for: a new one each time left the whole file to the
 * collector, 60–80 MB more RSS at 64 MiB).
 */
async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  using file = await Deno.open(path);
  const buf = new Uint8Array(CHUNK_IDS * 4);
  for (;;) {
    let got = 0;
    while (got < buf.length) {
      const n = await file.read(buf.subarray(got));
      if (n === null) break;
      got += n;
    }
    if (got > 0) yield buf.subarray(0, got);
    if (got < buf.length) return;
  }
}

/** The pieces in one buffer of their exact size, each let go once copied. */
function joinPieces(pieces: IdPieces, room: number): TokenizedCorpus {
  const ids = holding(
    pieces.numTokens,
    "ids of a tokenized corpus",
    () => withRoom(pieces.numTokens, room * pieces.docs.length),
  );
  let at = 0;
  for (let d = 0; d < pieces.docs.length; d++) {
    ids.set(pieces.docs[d], at);
    at += pieces.docs[d].length;
    pieces.docs[d] = EMPTY;
  }
  return { ids, docOffsets: pieces.docOffsets };
}

const EMPTY = new Uint32Array(0);

/**
 * `allocate()`, whose RangeError (the buffer cannot be had: "Array buffer
 * allocation failed", or longer than a typed array may be) is said in one
 * line as the memory it is, not taken for a corrupt cache.
 */
function holding<T>(
  count: number,
  what: string,
  allocate: () => T,
): T {
  try {
    return allocate();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new DataError(
      `Out of memory: cannot hold the ${count} ${what} (${
        (count * 4 / 2 ** 20).toFixed(0)
      } MiB at 4 bytes each: ${e.message}); free memory, or use a smaller corpus`,
    );
  }
}

/** `n` ids, zero, at the start of a buffer with `room` more. */
function withRoom(n: number, room: number): Uint32Array {
  return new Uint32Array(n + room).subarray(0, n);
}

async function tokenizeArticles(
  source: CorpusSource,
  tokenizer: Tokenizer,
  options: TokenizeOptions,
  sink: (doc: Uint32Array) => void | Promise<void>,
): Promise<CorpusShape> {
  let n = 0;
  const offsets: number[] = [0];
  for await (
    const text of readArticles(source, {
      onProgress: options.onProgress,
      onWarning: options.onWarning,
    })
  ) {
    const doc = tokenizer.encode(text);
    // A view of a larger buffer would keep all of it: copied to its size.
    await sink(
      doc instanceof Uint32Array && doc.byteLength === doc.buffer.byteLength
        ? doc
        : Uint32Array.from(doc),
    );
    n += doc.length;
    offsets.push(n);
  }
  return { docOffsets: Uint32Array.from(offsets), numTokens: n };
}

async function readCache(
  path: string,
  corpusSha256: string,
  tokenizer: Tokenizer,
  options: {
    warn: (m: string) => void;
    room: number;
    beforeHolding?: (ids: number) => void;
  },
): Promise<TokenizedCorpus | undefined> {
  const { warn } = options;
  const problem = (why: string) => {
    warn(`token cache ${path} is ${why}; rebuilding it`);
    return undefined;
  };
  const unreadable = (e: unknown) => {
    if (e instanceof Deno.errors.NotFound) return undefined;
    // A FIFO, a device or a read error: refused unread, and replaced.
    warn(
      `${
        e instanceof BoundedReadError
          ? e.message
          : `cannot read token cache ${path} (${e})`
      }; rebuilding it`,
    );
    return undefined;
  };
  // The header first: it says how large the file must be, checked before
  // the rest is read (a planted or padded file is never read whole).
  let head: Uint8Array;
  let size: number;
  try {
    ({ head, size } = await readHeadBounded(path, {
      bytes: 12 + MAX_HEADER,
      what: "token cache",
    }));
  } catch (e) {
    return unreadable(e);
  }
  if (
    head.length < 12 ||
    new TextDecoder().decode(head.subarray(0, 8)) !== MAGIC
  ) {
    return problem("not a token cache (bad magic)");
  }
  const headerLength = new DataView(head.buffer, head.byteOffset, 12)
    .getUint32(8, true);
  if (headerLength > MAX_HEADER) {
    return problem("corrupt (header over 1 MiB)");
  }
  if (12 + headerLength > head.length) return problem("truncated");
  let header: CacheHeader;
  try {
    header = JSON.parse(
      new TextDecoder().decode(head.subarray(12, 12 + headerLength)),
    );
  } catch {
    return problem("corrupt (header is not JSON)");
  }
  if (header?.version !== 1) {
    return problem(`of unknown version ${header?.version}`);
  }
  if (
    header.corpusSha256 !== corpusSha256 ||
    header.tokenizerId !== tokenizer.id
  ) {
    return problem("stale (corpus or tokenizer changed)");
  }
  const { numDocs, numTokens, idBytes } = header;
  if (
    !Number.isSafeInteger(numDocs) || !Number.isSafeInteger(numTokens) ||
    numDocs < 0 || numTokens < 0 || (idBytes !== 2 && idBytes !== 4)
  ) {
    return problem("corrupt (bad counts)");
  }
  const start = 12 + headerLength;
  const expected = start + 4 * (numDocs + 1) + idBytes * numTokens;
  if (size !== expected) {
    return problem(
      `truncated or padded (size does not match its header: ${size} bytes, not ${expected})`,
    );
  }
  // The count is known before the ids are allocated: a budget refuses here.
  options.beforeHolding?.(numTokens);
  let read: TokenizedCorpus | "changed" | "corrupt";
  try {
    read = await readPayload(path, start, header, options.room);
  } catch (e) {
    if (e instanceof DataError) throw e; // out of memory: no rebuild mends it
    return unreadable(e);
  }
  if (read === "changed") {
    return problem("truncated or padded (size does not match its header)");
  }
  if (read === "corrupt") return problem("corrupt (checksum mismatch)");
  const { ids, docOffsets } = read;
  checkOffsets(path, docOffsets, numTokens);
  return { ids, docOffsets };
}

/**
 * A cache's offsets and ids, read in pieces straight into their typed
 * arrays and hashed as read: the ids are held once, at 4 bytes each (the
 * file whole, then its ids sliced, then widened held them 8 bytes a token).
 * `changed` when the file ends early, `corrupt` when the hash differs.
 */
async function readPayload(
  path: string,
  start: number,
  header: CacheHeader,
  room: number,
): Promise<TokenizedCorpus | "changed" | "corrupt"> {
  const { numDocs, numTokens, idBytes } = header;
  using file = await Deno.open(path);
  await file.seek(start, Deno.SeekMode.Start);
  const hash = createSha256();
  const fill = async (into: Uint8Array) => {
    let got = 0;
    while (got < into.length) {
      const n = await file.read(into.subarray(got));
      if (n === null) return false;
      got += n;
    }
    hash.update(into);
    return true;
  };
  const docOffsets = holding(
    numDocs + 1,
    `document offsets of token cache ${path}`,
    () => new Uint32Array(numDocs + 1),
  );
  if (!await fill(new Uint8Array(docOffsets.buffer))) return "changed";
  const ids = holding(
    numTokens,
    `ids of token cache ${path}`,
    () => withRoom(numTokens, room * numDocs),
  );
  if (idBytes === 4) {
    const bytes = new Uint8Array(ids.buffer, 0, ids.byteLength);
    for (let at = 0; at < bytes.length; at += CHUNK_IDS * 4) {
      const part = bytes.subarray(
        at,
        Math.min(bytes.length, at + CHUNK_IDS * 4),
      );
      if (!await fill(part)) return "changed";
    }
  } else {
    const scratch = new Uint16Array(CHUNK_IDS);
    for (let at = 0; at < numTokens; at += CHUNK_IDS) {
      const part = scratch.subarray(0, Math.min(CHUNK_IDS, numTokens - at));
      if (!await fill(new Uint8Array(part.buffer, 0, part.byteLength))) {
        return "changed";
      }
      ids.set(part, at);
    }
  }
  if ((await file.read(new Uint8Array(1))) !== null) return "changed";
  return hash.hex() === header.payloadSha256 ? { ids, docOffsets } : "corrupt";
}

/** Ids read or written at a time (4 MiB of 4-byte ids). */
const CHUNK_IDS = 1 << 20;

/**
 * Refuse a cache whose checksum holds but whose document offsets do not run
 * from 0 upward to its count of ids: a writer's bug or a file made by hand,
 * not damage (that is rebuilt in silence but for a warning), so it is said.
 */
function checkOffsets(
  path: string,
  docOffsets: Uint32Array,
  numTokens: number,
): void {
  const last = docOffsets.length - 1;
  let wrong: string | undefined;
  if (docOffsets[0] !== 0) {
    wrong = `its first document offset is ${docOffsets[0]}, not 0`;
  } else if (docOffsets[last] !== numTokens) {
    wrong = `its last document offset is ${
      docOffsets[last]
    }, not its ${numTokens} ids`;
  } else {
    const d = docOffsets.findIndex((o, i) => i > 0 && o < docOffsets[i - 1]);
    if (d > 0) {
      wrong = `its document offset ${d} (${docOffsets[d]}) is below offset ${
        d - 1
      } (${docOffsets[d - 1]})`;
    }
  }
  if (wrong !== undefined) {
    throw new DataError(
      `Token cache ${path} is inconsistent: ${wrong} (the offsets must run from 0 upward to the count of ids): delete it, and the next run rebuilds it`,
    );
  }
}
