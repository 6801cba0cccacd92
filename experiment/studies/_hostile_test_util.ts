// For tests of a study's readers: a results file put there as a FIFO (a
// read blocks), a link to /dev/zero (a read never ends) or a sparse file
// past the limit (a read fills the memory) must be refused in one line
// naming it, within 5 s.
import { assert, assertInstanceOf, assertStringIncludes } from "@std/assert";
import { BoundedReadError } from "@d3pm/core";
import { within } from "../../core/_within_test_util.ts";
import { STUDY_FILE_LIMIT } from "./_results.ts";

/** The three hostile files, and what their refusal says. */
export const HOSTILE = [
  { kind: "fifo", says: "it is a FIFO" },
  { kind: "/dev/zero", says: "it is a character device" },
  { kind: "huge", says: "it is larger than the 64.0 MiB" },
] as const;

/**
 * Put a hostile file at `path`, run `read`, and check that it is refused
 * within 5 s in one line naming `path`; the file is removed after.
 */
export async function assertRefusesHostile(
  path: string,
  kind: typeof HOSTILE[number]["kind"],
  says: string,
  read: () => Promise<unknown>,
): Promise<void> {
  if (kind === "fifo") {
    await new Deno.Command("mkfifo", { args: [path] }).output();
  } else if (kind === "/dev/zero") {
    await Deno.symlink("/dev/zero", path);
  } else {
    const file = await Deno.open(path, { write: true, create: true });
    await file.truncate(STUDY_FILE_LIMIT + 1); // sparse: no disk used
    file.close();
  }
  try {
    const got = await within(5_000, read, kind === "fifo" ? path : undefined);
    if (got === "timeout") throw new Error(`${kind} ${path}: hung`);
    if (!("error" in got)) throw new Error(`${kind} ${path}: read, no error`);
    const e = got.error as Error;
    assertInstanceOf(e, BoundedReadError);
    assertStringIncludes(e.message, `Cannot read ${path}: ${says}`);
    assert(!e.message.includes("\n"), e.message);
  } finally {
    await Deno.remove(path);
  }
}
