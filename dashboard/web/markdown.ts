/// <reference lib="dom" />
// Just enough Markdown for report.md: headings, paragraphs, tables, code,
// inline code and emphasis; images become a note (the page draws the charts).
import { h } from "./dom.ts";

function inline(text: string): (Node | string)[] {
  const out: (Node | string)[] = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*|_([^_]+)_/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    out.push(text.slice(last, m.index));
    if (m[1] !== undefined) out.push(h("code", {}, m[1]));
    else if (m[2] !== undefined) out.push(h("b", {}, m[2]));
    else out.push(h("i", {}, m[3]));
    last = m.index! + m[0].length;
  }
  out.push(text.slice(last));
  return out;
}

function cells(line: string): string[] {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) =>
    c.trim()
  );
}

/** Render report Markdown as elements. */
export function renderMarkdown(md: string): HTMLElement {
  const root = h("div", { class: "markdown" });
  const lines = md.split("\n");
  let para: string[] = [];
  const flush = () => {
    if (para.length) root.appendChild(h("p", {}, ...inline(para.join(" "))));
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const heading = /^(#{1,4})\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      const tag = (["h2", "h3", "h4", "h5"] as const)[heading[1].length - 1];
      root.appendChild(h(tag, {}, ...inline(heading[2])));
    } else if (line.startsWith("|") && lines[i + 1]?.match(/^\|\s*:?-/)) {
      flush();
      const head = cells(line);
      const rows: string[][] = [];
      i += 2;
      while (i < lines.length && lines[i].startsWith("|")) {
        rows.push(cells(lines[i++]));
      }
      i--;
      root.appendChild(
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "report-table" },
            h(
              "thead",
              {},
              h("tr", {}, ...head.map((c) => h("th", {}, ...inline(c)))),
            ),
            h(
              "tbody",
              {},
              ...rows.map((r) =>
                h("tr", {}, ...r.map((c) => h("td", {}, ...inline(c))))
              ),
            ),
          ),
        ),
      );
    } else if (line.startsWith("```")) {
      flush();
      const code: string[] = [];
      while (++i < lines.length && !lines[i].startsWith("```")) {
        code.push(lines[i]);
      }
      root.appendChild(h("pre", {}, code.join("\n")));
    } else if (/^!\[[^\]]*\]\([^)]*\)$/.test(line.trim())) {
      flush();
      root.appendChild(h("p", { class: "muted" }, "(chart drawn above)"));
    } else if (line.trim() === "") flush();
    else para.push(line);
  }
  flush();
  return root;
}
