// A run folder's JSON file, parsed: one that is there but does not parse is
// damaged (a DamagedFileError), told apart from one that cannot be read.
import { DamagedFileError } from "./damaged_file.ts";

/**
 * `text`, the contents of the JSON file `path` (a `what`), parsed; text that
 * is not JSON is a {@linkcode DamagedFileError} whose message is
 * `readJsonBounded`'s: `PATH is not valid JSON (expected a WHAT): WHY`.
 */
export function parseJsonFile(
  text: string,
  path: string,
  what: string,
): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    // V8 quotes the text it failed on, line breaks included: one line.
    const why = (e as Error).message.replace(/\s*[\r\n]+\s*/g, " ").trim();
    const detail = `is not valid JSON (expected a ${what}): ${why}`;
    throw new DamagedFileError(`${path} ${detail}`, { path, detail, cause: e });
  }
}
