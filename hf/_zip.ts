// The central directory of a zip archive (ZIP64 too), read from its end:
// what `torch.save` writes since PyTorch 1.6. Only stored (uncompressed)
// records can be read in place; torch stores every record that way.

import type { RandomAccessFile } from "./_file.ts";
import { InteropError } from "./errors.ts";

/** One record of the archive. */
export interface ZipRecord {
  /** Its name. */
  name: string;
  /** 0: stored; anything else is compressed. */
  method: number;
  /** Bytes of the stored data. */
  size: number;
  /** Where the record's local header starts. */
  headerOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_RECORDS = 200_000;
const MAX_DIRECTORY = 64 * 1024 * 1024;

/** Whether the file starts like a zip archive. */
export async function isZip(file: RandomAccessFile): Promise<boolean> {
  if (file.size < 4) return false;
  const head = await file.read(0, 4);
  return new DataView(head.buffer).getUint32(0, true) === LOCAL;
}

/** The records of a zip archive, by name. */
export async function zipRecords(
  file: RandomAccessFile,
): Promise<Map<string, ZipRecord>> {
  const fail = (why: string): never => {
    throw new InteropError(
      `${file.path} is not a readable zip archive: ${why}`,
    );
  };
  const tailLength = Math.min(file.size, 22 + 65535);
  const tail = await file.read(file.size - tailLength, tailLength);
  const tv = new DataView(tail.buffer);
  let at = -1;
  for (let i = tailLength - 22; i >= 0; i--) {
    if (tv.getUint32(i, true) === EOCD) {
      at = i;
      break;
    }
  }
  if (at < 0) fail("no end-of-central-directory record (truncated file?)");
  let count = tv.getUint16(at + 10, true);
  let size = tv.getUint32(at + 12, true);
  let offset = tv.getUint32(at + 16, true);
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    // ZIP64: a locator just before the record points at the real one.
    if (at < 20 || tv.getUint32(at - 20, true) !== ZIP64_LOCATOR) {
      fail("a ZIP64 archive without its locator");
    }
    const where = Number(tv.getBigUint64(at - 20 + 8, true));
    if (where + 56 > file.size) fail("the ZIP64 record lies past the end");
    const rec = new DataView((await file.read(where, 56)).buffer);
    if (rec.getUint32(0, true) !== ZIP64_EOCD) fail("a bad ZIP64 record");
    count = Number(rec.getBigUint64(32, true));
    size = Number(rec.getBigUint64(40, true));
    offset = Number(rec.getBigUint64(48, true));
  }
  if (count > MAX_RECORDS) {
    fail(`${count} records, more than the ${MAX_RECORDS} accepted`);
  }
  if (size > MAX_DIRECTORY || offset + size > file.size) {
    fail(`a central directory of ${size} bytes at ${offset} does not fit`);
  }
  const dir = await file.read(offset, size);
  const dv = new DataView(dir.buffer);
  const names = new TextDecoder();
  const records = new Map<string, ZipRecord>();
  let p = 0;
  for (let r = 0; r < count; r++) {
    if (p + 46 > size || dv.getUint32(p, true) !== CENTRAL) {
      fail(`central directory entry ${r} is malformed`);
    }
    const method = dv.getUint16(p + 10, true);
    let stored = dv.getUint32(p + 20, true);
    const nameLength = dv.getUint16(p + 28, true);
    const extraLength = dv.getUint16(p + 30, true);
    const commentLength = dv.getUint16(p + 32, true);
    let headerOffset = dv.getUint32(p + 42, true);
    const end = p + 46 + nameLength + extraLength + commentLength;
    if (end > size) fail(`central directory entry ${r} runs past its end`);
    const name = names.decode(dir.subarray(p + 46, p + 46 + nameLength));
    // ZIP64 extra field: 64-bit values for the fields saturated above, in
    // the order uncompressed size, compressed size, header offset.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = dv.getUint16(e, true);
      const length = dv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let f = e + 4;
        const next = () => {
          if (f + 8 > e + 4 + length || f + 8 > extraEnd) {
            fail(`entry ${name}: short ZIP64 field`);
          }
          const v = Number(dv.getBigUint64(f, true));
          f += 8;
          return v;
        };
        if (dv.getUint32(p + 24, true) === 0xffffffff) next();
        if (stored === 0xffffffff) stored = next();
        if (headerOffset === 0xffffffff) headerOffset = next();
      }
      e += 4 + length;
    }
    records.set(name, { name, method, size: stored, headerOffset });
    p = end;
  }
  return records;
}

/** Where a stored record's bytes start, from its local header. */
export async function recordDataOffset(
  file: RandomAccessFile,
  record: ZipRecord,
): Promise<number> {
  if (record.method !== 0) {
    throw new InteropError(
      `${file.path}: record ${record.name} is compressed (method ${record.method}); torch.save stores records uncompressed, and only such records are read`,
    );
  }
  const local = new DataView((await file.read(record.headerOffset, 30)).buffer);
  if (local.getUint32(0, true) !== LOCAL) {
    throw new InteropError(
      `${file.path}: record ${record.name} has no local header at ${record.headerOffset}`,
    );
  }
  const start = record.headerOffset + 30 + local.getUint16(26, true) +
    local.getUint16(28, true);
  if (start + record.size > file.size) {
    throw new InteropError(
      `${file.path}: record ${record.name} runs past the end of the file (truncated file?)`,
    );
  }
  return start;
}
