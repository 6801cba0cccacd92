/// <reference lib="dom" />
// One run: live training curves (server-sent events of metrics.jsonl lines),
// the speed-quality chart, the report's tables, the samples, the configuration
// with each option's help; and the comparison of several runs.
import type { ChartSeries } from "@d3pm/eval/chart";
import {
  type ChartLabels,
  type Curves,
  curvesOf,
  lossChart,
  speedQualityChart,
} from "@d3pm/experiment/charts";
import {
  ApiError,
  followMetrics,
  getJson,
  getRunFile,
  type MetricsFollow,
  STATIC,
} from "./api.ts";
import { ChartView } from "./chart_view.ts";
import {
  type ComparedRun,
  heldStreams,
  refreshStream,
} from "./compare_slots.ts";
import { ago, h, mount } from "./dom.ts";
import { renderMarkdown } from "./markdown.ts";
import { badge, REFRESH_MS, type RunSummary } from "./runs_page.ts";
import { speedMeanSeries, withSpeedMeans } from "./speed_mean.ts";
import type { ModelResult } from "@d3pm/experiment";

export interface RunInfo extends RunSummary {
  configFull?: Record<string, unknown>;
  results?:
    & { results: { model: string; seed: number }[] }
    & Record<string, unknown>;
  models: { seed: number; kind: string; trained: boolean }[];
  labels: Record<
    string,
    {
      short: string;
      title: string;
      validation: string;
      network?: string;
      unmasking: boolean;
    }
  >;
}

export function labelsOf(info: RunInfo): ChartLabels {
  return {
    label: (k) => info.labels[k]?.short ?? k,
    validation: (k) => info.labels[k]?.validation ?? "validation",
  };
}

/** A run whose log may still grow: its metrics stream is held open. */
function isLive(status: string): boolean {
  return status === "running" || status === "held";
}

/**
 * The most metrics streams a comparison holds open (live runs; the others
 * are read to their end and let go, the rest of the live ones read again
 * every few seconds): a browser has 6 connections per host over HTTP/1.1,
 * and the page's own requests need some.
 */
const COMPARE_HELD = 3;

let optionsHelp: Promise<Record<string, { help: string }>> | undefined;

/** A live loss chart of one run, appended to as lines arrive. */
class LiveCurves {
  curves: Curves = { train: new Map(), valid: new Map() };
  lines = 0;
  lastStep = new Map<string, number>();
  #pending = false;
  constructor(
    readonly view: ChartView,
    readonly labels: ChartLabels,
    readonly onDraw: () => void,
    public mode: "mean" | "seeds" | "auto" = "auto",
  ) {}
  add(record: Record<string, unknown>): void {
    this.lines++;
    curvesOf([record], this.curves);
    if (typeof record.model === "string" && typeof record.step === "number") {
      this.lastStep.set(`${record.model} seed ${record.seed}`, record.step);
    }
    this.schedule();
  }
  reset(): void {
    this.curves = { train: new Map(), valid: new Map() };
    this.lines = 0;
    this.schedule();
  }
  schedule(): void {
    if (this.#pending) return;
    this.#pending = true;
    setTimeout(() => {
      this.#pending = false;
      this.draw();
    }, 200);
  }
  draw(): void {
    const size = { width: 1000, height: 460 };
    const spec = lossChart(
      this.curves,
      this.labels,
      this.mode === "auto" ? size : { mode: this.mode, ...size },
    );
    this.view.update(spec.series, spec.options);
    this.onDraw();
  }
}

/** Render one run's page; returns a function that stops following it. */
export function runPage(el: HTMLElement, id: string): () => void {
  let stop = () => {};
  let closed = false;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  (async () => {
    let info: RunInfo;
    try {
      info = await getJson<RunInfo>("/api/run", { run: id });
    } catch (e) {
      mount(
        el,
        h(
          "p",
          { class: "error" },
          `Cannot open run ${id}: ${(e as Error).message}`,
        ),
      );
      return;
    }
    if (closed) return;
    const labels = labelsOf(info);
    const liveNote = h(
      "span",
      { class: "live", "data-testid": "live-state" },
      "connecting…",
    );
    const progress = h("span", { class: "muted progress" });
    const lossView = new ChartView("x");
    const live = new LiveCurves(lossView, labels, () => {
      progress.textContent = `${live.lines} records · ${
        [...live.lastStep].map(([k, s]) => `${k}: step ${s}`).join(" · ")
      }`;
    });
    const modeSelect = h(
      "select",
      {
        "aria-label": "seeds",
        onchange: (e: Event) => {
          live.mode = (e.target as HTMLSelectElement).value as "auto";
          live.draw();
        },
      },
      h("option", { value: "auto" }, "mean ± sd across seeds"),
      h("option", { value: "seeds" }, "each seed"),
    );
    const speedView = new ChartView("nearest");
    const reportHolder = h("div", { class: "report" });
    const samplesHolder = h("pre", { class: "samples" });
    const c = info.configFull ?? {};
    const help = await (optionsHelp ??= getJson("/api/options").catch(
      () => ({}),
    ) as Promise<Record<string, { help: string }>>);
    const trained = info.models.filter((m) => m.trained);
    // The state shown, redrawn as the run's state changes (a run killed
    // stays "running ● live" no longer; a resumed one is live again).
    const state = h("span", { class: "state" });
    const showState = () => {
      mount(
        state,
        badge(info.status),
        info.reason ? h("span", { class: "reason" }, info.reason) : null,
        h("span", { class: "muted" }, `updated ${ago(info.updated)}`),
      );
    };
    showState();
    mount(
      el,
      h(
        "div",
        { class: "page-head" },
        h("h1", {}, id),
        state,
        !STATIC && trained.length
          ? h("a", {
            class: "button primary",
            href: `#/play/${encodeURIComponent(id)}`,
          }, "Open the playground")
          : null,
      ),
      info.command ? h("p", {}, h("code", {}, info.command)) : null,
      h(
        "section",
        { class: "card" },
        h(
          "div",
          { class: "card-head" },
          h("h2", {}, "Training curves"),
          liveNote,
          modeSelect,
        ),
        lossView.element,
        progress,
      ),
      h(
        "section",
        { class: "card", id: "speed-card", hidden: !info.results },
        h("h2", {}, "Speed against quality"),
        speedView.element,
      ),
      h("section", { class: "card" }, h("h2", {}, "Report"), reportHolder),
      h("section", { class: "card" }, h("h2", {}, "Samples"), samplesHolder),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Configuration"),
        h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "config" },
            h(
              "tbody",
              {},
              ...Object.entries(c).map(([k, v]) =>
                h(
                  "tr",
                  {},
                  h("th", { title: help[k]?.help ?? "" }, k),
                  h("td", {}, JSON.stringify(v)),
                  h("td", { class: "muted help" }, help[k]?.help ?? ""),
                )
              ),
            ),
          ),
        ),
      ),
    );
    live.draw();
    let caughtUp = false;
    let follow: MetricsFollow | undefined;
    const showLive = () => {
      if (!caughtUp) return;
      // A held run's writer is another host's: its log may still grow.
      liveNote.textContent = info.status === "running"
        ? "● live"
        : info.status === "held"
        ? "following (its writer cannot be checked from here)"
        : "complete";
      liveNote.className = info.status === "running" ? "live on" : "live";
    };
    if (info.status === "imported") {
      // `deno task import` writes no training log: nothing to follow.
      liveNote.textContent = "no training log (imported, not trained here)";
      liveNote.className = "live";
    } else {
      follow = followMetrics(id, {
        line: (r) => live.add(r),
        caughtUp: () => {
          caughtUp = true;
          showLive();
        },
        reset: () => live.reset(),
        error: (retrying) => {
          liveNote.textContent = retrying ? "reconnecting…" : "disconnected";
        },
        gone: (reason) => {
          caughtUp = false; // the reason stays
          liveNote.textContent = reason;
          liveNote.className = "live";
        },
      }, () => isLive(info.status));
      stop = () => follow?.stop();
    }
    const showFiles = async () => {
      speedView.element.closest("section")!.hidden = !info.results;
      if (info.results) {
        const spec = speedQualityChart(info.results as never, labels, {
          width: 1000,
          height: 460,
        });
        // Each contestant of several seeds: its mean ± sd over them on top.
        const means = speedMeanSeries(
          (info.results as { results: ModelResult[] }).results,
          labels,
        );
        speedView.update(
          withSpeedMeans(spec.series, means),
          means.length
            ? {
              ...spec.options,
              note: "Mean ± sd of the gen PPL across seeds; each seed faint.",
            }
            : spec.options,
        );
      }
      const report = await getRunFile(id, "report.md");
      mount(
        reportHolder,
        report ? renderMarkdown(report) : h(
          "p",
          { class: "muted" },
          "No report yet: it is written when the run finishes.",
        ),
      );
      const samples = await getRunFile(id, "samples.txt");
      samplesHolder.textContent = samples ?? "No samples yet.";
    };
    await showFiles();
    if (STATIC) return;
    // The run's state again every few seconds, the next request only once
    // the last one answered: the badge and "live"/"complete" follow a run
    // killed, resumed or finished while the page is open.
    const refresh = async () => {
      if (closed) return;
      try {
        const now = await getJson<RunInfo>("/api/run", { run: id });
        if (closed) return;
        const finished = now.status === "finished" &&
          info.status !== "finished";
        const wasLive = isLive(info.status);
        info = now;
        showState();
        showLive();
        // Live again: follow again; live no longer: read to the end, let go.
        // Live, or live no longer, or a stream not caught up (refused with
        // a 503 by the server's bound): read again.
        if (wasLive || isLive(now.status) || !caughtUp) follow?.refresh();
        if (finished) await showFiles();
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) {
          // Deleted or moved: a stream let go of (the run not live) hears
          // no `gone`, so the state's answer says it.
          follow?.stop();
          caughtUp = false;
          liveNote.textContent =
            `Run ${id}'s folder is gone (deleted or moved): nothing more to follow`;
          liveNote.className = "live";
          return;
        } /* else kept as shown; tried again */
      }
      if (!closed) refreshTimer = setTimeout(refresh, REFRESH_MS);
    };
    refreshTimer = setTimeout(refresh, REFRESH_MS);
  })();
  return () => {
    closed = true;
    clearTimeout(refreshTimer);
    stop();
  };
}

/** Several runs overlaid: per run and contestant the mean training and validation curves, and speed against quality. */
export function comparePage(el: HTMLElement, ids: string[]): () => void {
  let closed = false;
  let stopCompared = () => {};
  (async () => {
    const infos = await Promise.all(
      ids.map((id) =>
        getJson<RunInfo>("/api/run", { run: id }).catch(() => undefined)
      ),
    );
    if (closed) return;
    const lossView = new ChartView("x");
    const speedView = new ChartView("nearest");
    mount(
      el,
      h(
        "div",
        { class: "page-head" },
        h("h1", {}, `Comparing ${ids.length} runs`),
      ),
      h(
        "p",
        {},
        ...ids.map((
          id,
          i,
        ) => [
          i ? ", " : "",
          h("a", { href: `#/run/${encodeURIComponent(id)}` }, id),
        ]),
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Training curves (mean over seeds)"),
        lossView.element,
      ),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Speed against quality"),
        speedView.element,
      ),
    );
    const curves = ids.map(() =>
      ({ train: new Map(), valid: new Map() }) as Curves
    );
    let pending = false;
    const PALETTE = [
      "#0b6fb0",
      "#d1495b",
      "#2a9d5c",
      "#e08a00",
      "#7b4fb2",
      "#8c564b",
      "#c2549d",
      "#5f6b73",
    ];
    const draw = () => {
      const series: ChartSeries[] = [];
      let colour = 0;
      ids.forEach((id, i) => {
        const info = infos[i];
        if (!info) return;
        const spec = lossChart(curves[i], labelsOf(info), { mode: "mean" });
        const kindsColour = new Map<string, string>();
        for (const s of spec.series) {
          if (s.hideInLegend) continue;
          const kind = s.name.split(" ")[0];
          if (!kindsColour.has(kind)) {
            kindsColour.set(kind, PALETTE[colour++ % PALETTE.length]);
          }
          series.push({
            ...s,
            name: `${id}: ${s.name}`,
            color: kindsColour.get(kind),
            band: undefined,
          });
        }
      });
      lossView.update(series, {
        title: "Training loss and validation, by run (nats per token)",
        xLabel: "step",
        yLabel: "nats per token",
        width: 1000,
        height: 480,
      });
      const sq: ChartSeries[] = [];
      colour = 0;
      ids.forEach((id, i) => {
        const info = infos[i];
        if (!info?.results) return;
        for (
          const s of speedQualityChart(info.results as never, labelsOf(info), {
            prefix: `${id}: `,
          }).series
        ) {
          sq.push({ ...s, color: PALETTE[colour++ % PALETTE.length] });
        }
      });
      speedView.update(sq, {
        title: "Generation speed against sample quality, by run",
        xLabel: "tokens/s generated (log scale)",
        yLabel: "gen PPL under the judge",
        logX: true,
        width: 1000,
        height: 480,
      });
    };
    const schedule = () => {
      if (pending) return;
      pending = true;
      setTimeout(() => {
        pending = false;
        draw();
      }, 250);
    };
    const compared = followCompared(ids, infos, {
      line: (i, r) => (curvesOf([r], curves[i]), schedule()),
      reset: (i) => (curves[i] = { train: new Map(), valid: new Map() }),
      changed: schedule,
    });
    stopCompared = compared.stop;
    draw();
  })();
  return () => {
    closed = true;
    stopCompared();
  };
}

/**
 * The compared runs' streams: at most {@linkcode COMPARE_HELD} held open,
 * given to runs as they become live and freed as they stop; the runs'
 * states read again every {@linkcode REFRESH_MS} (`infos` updated in
 * place, `changed` told when one changed): a live run not held, one whose
 * state changed, and one whose stream has not caught up yet (refused with
 * a 503 by the server's bound) are read again.
 */
function followCompared(
  ids: string[],
  infos: (RunInfo | undefined)[],
  on: {
    line: (i: number, record: Record<string, unknown>) => void;
    reset: (i: number) => void;
    changed: () => void;
  },
): { stop: () => void } {
  const caught = ids.map(() => false);
  const live = (i: number) => isLive(infos[i]?.status ?? "");
  const assign = (before: ReadonlySet<number>) =>
    heldStreams(before, ids.map((_, i) => live(i)), COMPARE_HELD);
  let held = assign(new Set());
  // An imported run has no training log: no stream waits for one.
  const follows = ids.map((id, i) =>
    infos[i]?.status === "imported" ? undefined : followMetrics(id, {
      line: (r) => on.line(i, r),
      reset: () => on.reset(i),
      caughtUp: () => (caught[i] = true),
    }, () => held.has(i))
  );
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const poll = async () => {
    const now = await Promise.all(
      ids.map((id, i) =>
        follows[i]
          ? getJson<RunInfo>("/api/run", { run: id }).catch(() => infos[i])
          : infos[i]
      ),
    );
    if (closed) return;
    const before = infos.map((x) => x?.status);
    const wasHeld = held;
    now.forEach((x, i) => (infos[i] = x));
    held = assign(wasHeld);
    let changed = false;
    follows.forEach((f, i) => {
      const run: ComparedRun = {
        status: [before[i], infos[i]?.status],
        held: [wasHeld.has(i), held.has(i)],
        live: live(i),
        caught: caught[i],
      };
      changed ||= run.status[0] !== run.status[1];
      if (refreshStream(run)) f?.refresh();
    });
    if (changed) on.changed();
    timer = setTimeout(poll, REFRESH_MS);
  };
  timer = setTimeout(poll, REFRESH_MS);
  return {
    stop: () => {
      closed = true;
      clearTimeout(timer);
      follows.forEach((f) => f?.stop());
    },
  };
}
