/// <reference lib="dom" />
// The runs page: every run folder with its state, configuration and headline figures.
import { getJson, STATIC } from "./api.ts";
import { ago, fixed, h, mount } from "./dom.ts";

export interface RunSummary {
  id: string;
  status: "running" | "held" | "finished" | "imported" | "stopped" | "corrupt";
  reason?: string;
  command?: string;
  config?: Record<string, unknown>;
  headline?: {
    model: string;
    label: string;
    bpt: number;
    bound: boolean;
    batchesPerSecond: number;
    seeds: number;
  }[];
  trained?: string[];
  updated?: string;
}

const STATUS_TEXT: Record<RunSummary["status"], string> = {
  running: "running",
  held: "held by another host",
  finished: "finished",
  imported: "imported (not trained here)",
  stopped: "stopped (failed or interrupted)",
  corrupt: "corrupt",
};

/** A state badge (a state this page does not know shows as its name). */
export function badge(status: RunSummary["status"]): HTMLElement {
  return h(
    "span",
    { class: `badge badge-${status}` },
    STATUS_TEXT[status] ?? String(status),
  );
}

/** The most characters of a run's command the list shows (all in its tooltip). */
const COMMAND_SHOWN = 160;

/** A command as the list shows it: cut at a word within {@linkcode COMMAND_SHOWN}. */
function shortCommand(command: string): string {
  if (command.length <= COMMAND_SHOWN) return command;
  const cut = command.slice(0, COMMAND_SHOWN - 1);
  const space = cut.lastIndexOf(" ");
  return `${space > COMMAND_SHOWN / 2 ? cut.slice(0, space) : cut} …`;
}

/** Render the runs page into `el`; returns a function that stops its refresh. */
export function runsPage(el: HTMLElement): () => void {
  const selected = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const draw = async () => {
    let runs: RunSummary[];
    let skipped: { folder: string; reason: string }[];
    try {
      const list = await getJson<
        { runs: RunSummary[]; skipped?: typeof skipped }
      >("/api/runs");
      runs = list.runs;
      skipped = list.skipped ?? [];
    } catch (e) {
      mount(
        el,
        h("p", { class: "error" }, `Cannot list runs: ${(e as Error).message}`),
      );
      return;
    }
    if (stopped) return;
    const compare = h("button", {
      class: "primary",
      disabled: selected.size < 2,
      onclick: () =>
        location.hash = `#/compare/${
          [...selected].map(encodeURIComponent).join(",")
        }`,
    }, `Compare selected (${selected.size})`);
    const rows = runs.map((r) => {
      const c = r.config ?? {};
      const box = h("input", {
        type: "checkbox",
        checked: selected.has(r.id),
        disabled: r.status === "corrupt",
        "aria-label": `select ${r.id}`,
        onchange: (e: Event) => {
          if ((e.target as HTMLInputElement).checked) selected.add(r.id);
          else selected.delete(r.id);
          compare.disabled = selected.size < 2;
          compare.textContent = `Compare selected (${selected.size})`;
        },
      });
      // A corrupt run's models are not served (a results.json that is not
      // JSON still lists them as trained): no playground to offer.
      const canPlay = !STATIC && r.status !== "corrupt" &&
        (r.trained ?? []).length > 0;
      return h(
        "tr",
        { class: `run-row status-${r.status}`, "data-run": r.id },
        h("td", {}, box),
        h(
          "td",
          {},
          r.status === "corrupt"
            ? h("span", { class: "run-id" }, r.id)
            : h("a", {
              href: `#/run/${encodeURIComponent(r.id)}`,
              class: "run-id",
            }, r.id),
          r.command
            ? h(
              "div",
              { class: "command", title: r.command },
              shortCommand(r.command),
            )
            : null,
        ),
        h(
          "td",
          {},
          badge(r.status),
          r.reason ? h("div", { class: "reason" }, r.reason) : null,
        ),
        h("td", {}, c.preset ? `${c.preset}` : "–"),
        h(
          "td",
          { class: "nowrap" },
          c.models ? String(c.models).replaceAll(",", ", ") : "–",
        ),
        h("td", { class: "num" }, String(c.seeds ?? "–")),
        h("td", { class: "num" }, String(c.steps ?? "–")),
        h(
          "td",
          { class: "nowrap" },
          c.nLayer ? `${c.nLayer}L · d${c.dModel} · T${c.blockLength}` : "–",
        ),
        h(
          "td",
          {},
          (r.headline ?? []).map((m) =>
            h(
              "div",
              { class: "headline" },
              h("b", {}, m.label),
              ` ${m.bound ? "≤ " : ""}${fixed(m.bpt)} BPT · ${
                fixed(m.batchesPerSecond, 2)
              } batch/s`,
            )
          ),
          r.headline ? null : h(
            "span",
            { class: "muted" },
            r.status === "running" ? "training…" : "–",
          ),
        ),
        h("td", { class: "muted" }, ago(r.updated)),
        h(
          "td",
          {},
          canPlay
            ? h(
              "a",
              { href: `#/play/${encodeURIComponent(r.id)}` },
              "playground",
            )
            : null,
        ),
      );
    });
    mount(
      el,
      h("div", { class: "page-head" }, h("h1", {}, "Runs"), compare),
      skipped.length
        ? h(
          "details",
          { class: "skipped", "data-testid": "skipped" },
          h(
            "summary",
            { class: "muted" },
            skipped.length === 1
              ? "1 folder not listed for its name"
              : `${skipped.length} folders not listed for their names`,
          ),
          ...skipped.map((s) => h("div", { class: "reason" }, s.reason)),
        )
        : null,
      runs.length === 0
        ? h(
          "p",
          { class: "muted" },
          "No run folders here yet. Start one with deno task experiment --out runs/NAME.",
        )
        : h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "runs" },
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                ...[
                  "",
                  "run",
                  "state",
                  "preset",
                  "models",
                  "seeds",
                  "steps",
                  "model",
                  "headline (mean over seeds)",
                  "updated",
                  "",
                ].map((t) => h("th", {}, t)),
              ),
            ),
            h("tbody", {}, ...rows),
          ),
        ),
    );
  };
  // The next refresh 5 s after the last one answered, never while one is
  // out: a list of thousands of runs takes seconds, and a fixed interval
  // piled requests up behind it.
  const refresh = async () => {
    await draw();
    if (!stopped && !STATIC) timer = setTimeout(refresh, REFRESH_MS);
  };
  refresh();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/**
 * How long after one refresh of a page's data answered the next one
 * starts, ms (the runs list; a run page's state).
 *
 * @example
 * ```ts
 * import { REFRESH_MS } from "./runs_page.ts";
 * import { assertEquals } from "@std/assert";
 * assertEquals(REFRESH_MS, 5000);
 * ```
 */
export const REFRESH_MS = 5000;
