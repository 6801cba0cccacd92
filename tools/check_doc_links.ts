/**
 * The documentation's relative links resolve: every `[text](target)` and
 * `[label]: target` in a tracked Markdown file that is not a URL (`http:`,
 * `https:`, `mailto:`) names a file or folder that exists, relative to the
 * file, and its `#anchor`, when it has one and the target is Markdown (or the
 * anchor is the file's own, `(#anchor)`), is a heading's GitHub anchor there
 * (lower case, punctuation dropped, spaces as hyphens, `-1`, `-2` for
 * repeats) or an `<a id="…">`/`<a name="…">`. Links inside fenced code blocks
 * and inline code are not links and are passed over. Prints
 * `FILE:LINE: (target) — what is wrong` for each broken link and exits 1
 * when there is one.
 *
 *   deno run -A tools/check_doc_links.ts            # every tracked *.md
 *   deno run -A tools/check_doc_links.ts FILE.md…
 *
 * `tests/testdata/` (planted broken links) is left out of the default set.
 *
 * @module
 */
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

/** One broken link. */
export interface BrokenLink {
  /** The Markdown file, as given. */
  file: string;
  /** The 1-based line of the link. */
  line: number;
  /** The link's target as written. */
  target: string;
  /** What is wrong, in a few words. */
  problem: string;
}

/** A link found in Markdown text: its target and 1-based line. */
export interface DocLink {
  /** The target as written (`docs/x.md#y`). */
  target: string;
  /** The 1-based line. */
  line: number;
}

/**
 * The relative links of a Markdown text, outside fenced code and inline code.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { linksOf } from "./check_doc_links.ts";
 * assertEquals(
 *   linksOf("See [a](a.md#x) and `[b](b.md)`.\n~~~\n[c](c.md)\n~~~\n[d]: d.md"),
 *   [{ target: "a.md#x", line: 1 }, { target: "d.md", line: 5 }],
 * );
 * ```
 *
 * @param text The Markdown.
 * @returns Every relative link, in order.
 */
export function linksOf(text: string): DocLink[] {
  const out: DocLink[] = [];
  let fence: string | null = null;
  text.split("\n").forEach((raw, i) => {
    const opener = raw.match(/^\s{0,3}(`{3,}|~{3,})/);
    if (fence !== null) {
      if (
        opener && opener[1][0] === fence[0] && opener[1].length >= fence.length
      ) {
        fence = null;
      }
      return;
    }
    if (opener) {
      fence = opener[1];
      return;
    }
    const line = raw.replace(/(`+)[^`]*?\1/g, "");
    const ref = line.match(/^\s{0,3}\[[^\]]+\]:\s+<?([^\s>]+)>?/);
    const targets = ref ? [ref[1]] : [];
    for (
      const m of line.matchAll(/\]\(\s*<?([^\s)>]+)>?(?:\s+"[^"]*")?\s*\)/g)
    ) {
      targets.push(m[1]);
    }
    for (const target of targets) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // a URL
      out.push({ target, line: i + 1 });
    }
  });
  return out;
}

/**
 * The GitHub anchors of a Markdown text's headings (and `<a id>`/`<a name>`).
 *
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { anchorsOf } from "./check_doc_links.ts";
 * const a = anchorsOf("# Two commands\n## What is `x`?\n## Two commands");
 * assert(a.has("two-commands") && a.has("what-is-x") && a.has("two-commands-1"));
 * ```
 *
 * @param text The Markdown.
 * @returns The set of anchors.
 */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fence: string | null = null;
  for (const line of text.split("\n")) {
    const opener = line.match(/^\s{0,3}(`{3,}|~{3,})/);
    if (fence !== null) {
      if (
        opener && opener[1][0] === fence[0] && opener[1].length >= fence.length
      ) {
        fence = null;
      }
      continue;
    }
    if (opener) {
      fence = opener[1];
      continue;
    }
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) {
      anchors.add(m[1]);
    }
    const h = line.match(/^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/);
    if (!h) continue;
    const slug = h[1]
      .replace(/<[^>]+>/g, "")
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

async function kindAt(path: string): Promise<"file" | "dir" | null> {
  try {
    const s = await Deno.stat(path);
    return s.isDirectory ? "dir" : "file";
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * The broken relative links of some Markdown files.
 *
 * @param files The files' paths (relative to the working directory or absolute).
 * @returns Each broken link.
 */
export async function checkDocLinks(files: string[]): Promise<BrokenLink[]> {
  const broken: BrokenLink[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchors = async (path: string) => {
    let a = anchorCache.get(path);
    if (!a) {
      a = anchorsOf(await Deno.readTextFile(path));
      anchorCache.set(path, a);
    }
    return a;
  };
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    for (const { target, line } of linksOf(text)) {
      const hash = target.indexOf("#");
      const pathPart = hash < 0 ? target : target.slice(0, hash);
      const anchor = hash < 0 ? "" : decodeURIComponent(target.slice(hash + 1));
      const resolved = pathPart === ""
        ? file
        : normalize(join(dirname(file), decodeURIComponent(pathPart)));
      const kind = await kindAt(resolved);
      if (kind === null) {
        broken.push({
          file,
          line,
          target,
          problem: `${resolved} does not exist`,
        });
        continue;
      }
      if (anchor === "" || kind === "dir" || !resolved.endsWith(".md")) {
        continue;
      }
      if (!(await anchors(resolved)).has(anchor)) {
        broken.push({
          file,
          line,
          target,
          problem: `${resolved} has no heading whose anchor is #${anchor}`,
        });
      }
    }
  }
  return broken;
}

async function trackedMarkdown(): Promise<string[]> {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const { stdout, success } = await new Deno.Command("git", {
    args: ["ls-files", "-z", "--", "*.md"],
    cwd: root,
    stdout: "piped",
  }).output();
  if (!success) throw new Error("git ls-files failed: is this a git checkout?");
  return new TextDecoder().decode(stdout).split("\0")
    .filter((f) => f !== "" && !f.startsWith("tests/testdata/"))
    .map((f) => join(root, f));
}

if (import.meta.main) {
  if (Deno.args.some((a) => a.startsWith("-"))) {
    console.error(
      "usage: deno run -A tools/check_doc_links.ts [FILE.md…] (no files: every tracked *.md)",
    );
    Deno.exit(2);
  }
  const files = Deno.args.length > 0 ? Deno.args : await trackedMarkdown();
  const broken = await checkDocLinks(files);
  const cwd = Deno.cwd() + "/";
  for (const b of broken) {
    const f = b.file.startsWith(cwd) ? b.file.slice(cwd.length) : b.file;
    console.log(
      `${f}:${b.line}: (${b.target}) — ${b.problem.replaceAll(cwd, "")}`,
    );
  }
  console.log(
    `${files.length} Markdown files, ${broken.length} broken relative link${
      broken.length === 1 ? "" : "s"
    }`,
  );
  Deno.exit(broken.length > 0 ? 1 : 0);
}
