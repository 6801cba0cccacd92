/// <reference lib="dom" />
// The playground: a prompt, the AR model continuing it token by token, the
// D3PM denoising a row at a chosen step count and block diffusion (BD3)
// denoising block by block at that count per block, side by side, each step
// shown as it happens; click tokens to hide them and let the denoisers that
// fill blanks fill them in.
import { getJson, postEvents } from "./api.ts";
import {
  type BrowserFrame,
  BrowserModel,
  type ModelInfo,
  webgpuStatus,
} from "./browser_engine.ts";
import { h, mount } from "./dom.ts";
import type { RunInfo } from "./run_page.ts";

interface Vocab {
  pieces: string[];
  special: Record<string, number>;
}

interface Start {
  tokens: number[];
  given: number[];
  maskId?: number;
  steps: number;
  blockSize?: number;
  stepsPerBlock?: number;
  engine: string;
}

interface Frame {
  step: number;
  steps: number;
  tokens: number[];
  forwardPasses: number;
  elapsed?: number;
  tokensPerSecond?: number;
  batchesPerSecond?: number;
}

/** One model's panel: its tokens, its stats, and what the user hid. */
class Panel {
  readonly element: HTMLElement;
  readonly tokensEl: HTMLElement;
  readonly statsEl: HTMLElement;
  row: number[] = [];
  given = new Set<number>();
  hidden = new Set<number>();
  #prev: number[] = [];
  frames = 0;
  maskedSeen: number[] = [];
  running = false;
  /** Steps per block of the running generation (block diffusion). */
  stepsPerBlock?: number;
  constructor(
    readonly info: ModelInfo,
    readonly label: string,
    readonly vocab: Vocab,
    readonly onHide: () => void,
  ) {
    this.tokensEl = h("div", { class: "tokens", "data-model": info.kind });
    this.statsEl = h("div", {
      class: "stats",
      "data-testid": `stats-${info.kind}`,
    }, "–");
    this.element = h(
      "section",
      { class: "card panel", "data-panel": info.kind },
      h(
        "div",
        { class: "card-head" },
        h("h2", {}, label),
        h(
          "span",
          { class: "muted" },
          info.network === "causal"
            ? "left to right, one token per step"
            : info.maskId === undefined
            ? "its own generator, whole rows (no steps, no blanks)"
            : info.blockSize !== undefined
            ? `block by block: blocks of ${info.blockSize}, steps per block (T = ${info.T})`
            : `unmasking (T = ${info.T})`,
        ),
      ),
      this.statsEl,
      this.tokensEl,
    );
    this.tokensEl.addEventListener("click", (e) => {
      const span = (e.target as HTMLElement).closest("[data-pos]");
      if (!span || this.running || !this.fillsBlanks) return;
      const pos = Number(span.getAttribute("data-pos"));
      if (this.row[pos] === this.info.maskId) return;
      if (this.hidden.has(pos)) this.hidden.delete(pos);
      else this.hidden.add(pos);
      this.render(false);
      this.onHide();
    });
  }

  /** Whether it fills hidden tokens (block diffusion cannot: later blocks are unseen). */
  get fillsBlanks(): boolean {
    return this.info.network !== "causal" &&
      this.info.blockSize === undefined &&
      this.info.maskId !== undefined;
  }

  /** Whether it generates by its contestant's own generator (neither causal nor unmasking). */
  get ownGenerator(): boolean {
    return this.info.network !== "causal" && this.info.maskId === undefined;
  }

  masked(tokens: ArrayLike<number>): number {
    let n = 0;
    for (let i = 0; i < tokens.length; i++) {
      if (this.isPending(tokens[i], i)) n++;
    }
    return n;
  }

  isPending(x: number, i: number): boolean {
    return this.info.network === "causal"
      ? !this.given.has(i) && i >= this.filledUpTo
      : this.ownGenerator
      ? !this.given.has(i) && this.frames === 0
      : x === this.info.maskId;
  }

  filledUpTo = 0;

  begin(start: Start): void {
    this.row = start.tokens;
    this.stepsPerBlock = start.stepsPerBlock;
    this.given = new Set(start.given);
    this.hidden.clear();
    this.#prev = [];
    this.frames = 0;
    this.maskedSeen = [this.masked(start.tokens)];
    this.filledUpTo = start.given.length;
    this.render(true);
  }

  frame(f: Frame): void {
    this.#prev = this.row;
    this.row = f.tokens;
    this.frames++;
    if (this.info.network === "causal") {
      this.filledUpTo = this.given.size + f.step;
    }
    this.maskedSeen.push(this.masked(f.tokens));
    this.render(true);
  }

  render(highlight: boolean): void {
    const spans: HTMLElement[] = [];
    this.row.forEach((x, i) => {
      const pending = this.isPending(x, i);
      const fresh = highlight && !pending && this.#prev.length &&
        this.#prev[i] !== x;
      const cls = [
        "tok",
        pending ? "masked" : "",
        this.given.has(i) ? "given" : "",
        fresh ? "fresh" : "",
        this.hidden.has(i) ? "hidden-by-user" : "",
      ]
        .filter(Boolean).join(" ");
      const text = pending
        ? "\u2591"
        : pieceText(this.vocab.pieces[x] ?? `#${x}`);
      spans.push(
        h("span", {
          class: cls,
          "data-pos": i,
          title: `position ${i}, id ${x}`,
        }, text),
      );
    });
    mount(this.tokensEl, spans);
    this.tokensEl.dataset.masked = String(this.masked(this.row));
  }

  stats(text: string): void {
    this.statsEl.textContent = text;
  }
}

function pieceText(s: string): string {
  return s.replace(/\n/g, "\u21b5\n").replace(/ /g, "\u00a0") || "\u00b7";
}

/** Render the playground of a run. */
export function playground(el: HTMLElement, id: string): () => void {
  const abort = new AbortController();
  (async () => {
    let info: RunInfo, vocab: Vocab;
    try {
      [info, vocab] = await Promise.all([
        getJson<RunInfo>("/api/run", { run: id }),
        getJson<Vocab>("/api/run/vocab", { run: id }),
      ]);
    } catch (e) {
      mount(
        el,
        h(
          "p",
          { class: "error" },
          `Cannot open the playground of ${id}: ${(e as Error).message}`,
        ),
      );
      return;
    }
    const trained = info.models.filter((m) => m.trained);
    const seeds = [...new Set(trained.map((m) => m.seed))];
    if (!trained.length) {
      mount(
        el,
        h("p", { class: "error" }, `Run ${id} has no trained model yet.`),
      );
      return;
    }
    const seedSel = h(
      "select",
      { id: "seed", "aria-label": "seed" },
      ...seeds.map((s) => h("option", { value: s }, `seed ${s}`)),
    );
    const prompt = h("textarea", {
      id: "prompt",
      rows: 2,
      placeholder:
        "A prompt (optional): the AR model continues it; the D3PM keeps it and fills in the rest; BD3 continues it block by block",
      maxlength: 2000,
    });
    const steps = h("input", {
      id: "steps",
      type: "number",
      min: 1,
      value: 16,
      "aria-label": "steps",
    });
    const sampler = h(
      "select",
      { id: "sampler", "aria-label": "sampler" },
      ...["ancestral", "cached", "confidence"].map((s) =>
        h("option", { value: s }, s)
      ),
    );
    const temperature = h("input", {
      id: "temperature",
      type: "number",
      min: 0,
      max: 5,
      step: 0.05,
      value: 1,
      "aria-label": "temperature",
    });
    const topP = h("input", {
      id: "topP",
      type: "number",
      min: 0.01,
      max: 1,
      step: 0.01,
      value: 1,
      "aria-label": "top-p",
    });
    const rng = h("input", {
      id: "rng",
      type: "number",
      min: 0,
      value: 0,
      "aria-label": "random seed",
    });
    const where = h(
      "select",
      { id: "where", "aria-label": "where" },
      h("option", { value: "server" }, "on the server"),
      h("option", { value: "browser" }, "in this browser (WebGPU)"),
    );
    const gpuNote = h(
      "span",
      { class: "muted", id: "webgpu-status" },
      "checking WebGPU…",
    );
    const go = h("button", { class: "primary", id: "generate" }, "Generate");
    const fill = h(
      "button",
      { id: "fill", disabled: true },
      "Fill in hidden tokens",
    );
    const stop = h("button", { id: "stop", disabled: true }, "Stop");
    const message = h(
      "p",
      { class: "muted", id: "message" },
      "Generate, then click tokens of a denoiser's row to hide them and fill them in (block diffusion fills none: a block does not see the blocks after it).",
    );
    const panelsEl = h("div", { class: "panels" });
    mount(
      el,
      h(
        "div",
        { class: "page-head" },
        h("h1", {}, "Playground"),
        h("a", { href: `#/run/${encodeURIComponent(id)}` }, id),
      ),
      h(
        "section",
        { class: "card controls" },
        h("label", { class: "wide" }, "Prompt", prompt),
        h(
          "div",
          { class: "row" },
          h("label", {}, "Model", seedSel),
          h("label", {}, "Steps (D3PM; BD3: per block)", steps),
          h("label", {}, "Sampler", sampler),
          h("label", {}, "Temperature (0: greedy)", temperature),
          h("label", {}, "Top-p", topP),
          h("label", {}, "Random seed", rng),
          h("label", {}, "Run", where),
        ),
        h("div", { class: "row" }, go, fill, stop, gpuNote),
        message,
      ),
      panelsEl,
    );
    webgpuStatus().then((s) => {
      gpuNote.textContent = s.ok
        ? `WebGPU: ${s.label}${s.software ? " (software)" : ""}`
        : `No WebGPU here: ${s.reason}`;
      gpuNote.className = s.ok ? "ok" : "warn";
      if (!s.ok) {
        (where.options[1] as HTMLOptionElement).disabled = true;
        where.value = "server";
      }
    });
    let panels: Panel[] = [];
    const makePanels = async () => {
      const seed = Number(seedSel.value);
      const kinds = trained.filter((m) => m.seed === seed).map((m) => m.kind);
      const infos = await Promise.all(
        kinds.map((k) =>
          getJson<ModelInfo>("/api/run/unmasking", { run: id, seed, model: k })
        ),
      );
      panels = infos.filter((i) =>
        i.network === "causal" || i.maskId !== undefined
      ).map((i) =>
        new Panel(i, info.labels[i.kind]?.title ?? i.kind, vocab, () => {
          fill.disabled = !panels.some((p) => p.hidden.size > 0);
        })
      );
      const T = Math.max(...infos.map((i) => i.T ?? 0));
      if (T) steps.max = String(T);
      mount(panelsEl, panels.map((p) => p.element));
    };
    await makePanels();
    seedSel.addEventListener("change", makePanels);

    let current: AbortController | undefined;
    const settings = () => ({
      steps: Number(steps.value),
      sampler: sampler.value as "ancestral" | "cached" | "confidence",
      // An emptied field is the default, not 0 (greedy).
      temperature: temperature.value === "" ? 1 : Number(temperature.value),
      topP: Number(topP.value),
      rng: Number(rng.value),
    });

    const runServer = async (
      p: Panel,
      body: Record<string, unknown>,
      signal: AbortSignal,
    ) => {
      const t0 = performance.now();
      for await (const e of postEvents("/api/generate", body, signal)) {
        const data = JSON.parse(e.data);
        if (e.event === "start") p.begin(data);
        else if (e.event === "frame") {
          p.frame(data);
          p.stats(
            statsText(
              p,
              data,
              (performance.now() - t0) / 1000,
              data.engine ?? "server",
            ),
          );
        } else if (e.event === "error") throw new Error(data.error);
      }
    };

    const runBrowser = async (
      p: Panel,
      request: { prefix?: Int32Array; prompt?: Int32Array },
      signal: AbortSignal,
    ) => {
      if (p.info.tfjsOnly) {
        throw new Error(
          `it generates on the server only: ${p.info.tfjsOnly}`,
        );
      }
      if (settings().temperature === 0 && p.info.network !== "causal") {
        throw new Error(
          "temperature 0 (greedy) unmasks on the server only: this browser's WebGPU engine has no synchronous forward pass and its sampler draws at a temperature > 0 only; choose Run: on the server, or a small temperature such as 0.01",
        );
      }
      const seed = Number(seedSel.value);
      p.stats(
        "loading the weights into this browser's GPU (the first generation also compiles the kernels)…",
      );
      const model = await BrowserModel.shared(id, seed, p.info);
      const s = settings();
      const L = p.info.length;
      let row: number[], given: number[];
      if (request.prompt) {
        row = [...request.prompt];
        given = row.flatMap((x, i) => (x === p.info.maskId ? [] : [i]));
      } else if (p.info.network === "causal") {
        const pre = [...(request.prefix ?? [])];
        row = [
          (p.info.spec as { start: number }).start,
          ...pre,
          ...new Array(L - 1 - pre.length).fill(0),
        ];
        given = Array.from({ length: 1 + pre.length }, (_, i) => i);
      } else {
        const pre = [...(request.prefix ?? [])];
        row = [...pre, ...new Array(L - pre.length).fill(p.info.maskId)];
        given = pre.map((_, i) => i);
      }
      p.begin({
        tokens: row,
        given,
        maskId: p.info.maskId,
        steps: s.steps,
        engine: "browser",
      });
      const t0 = performance.now();
      await model.generate({
        ...request,
        ...s,
        steps: p.info.network === "causal" ? undefined : s.steps,
      }, (f: BrowserFrame) => {
        const elapsed = (performance.now() - t0) / 1000;
        const frame: Frame = {
          step: f.step,
          steps: f.steps,
          tokens: Array.from(f.tokens.subarray(0, L)),
          forwardPasses: f.forwardPasses,
        };
        p.frame(frame);
        const done = p.info.network === "causal"
          ? f.step
          : L - given.length - p.masked(frame.tokens);
        p.stats(
          statsText(
            p,
            {
              ...frame,
              tokensPerSecond: done / elapsed,
              batchesPerSecond: f.step / f.steps / elapsed,
            },
            elapsed,
            "this browser (WebGPU)",
          ),
        );
      }, signal);
    };

    const start = async (mode: "generate" | "fill") => {
      current?.abort();
      const ctl = new AbortController();
      current = ctl;
      const signal = AbortSignal.any([ctl.signal, abort.signal]);
      go.disabled = fill.disabled = true;
      stop.disabled = false;
      message.textContent = mode === "generate" ? "Generating…" : "Filling in…";
      const s = settings();
      const seed = Number(seedSel.value);
      let prefix: Int32Array | undefined;
      const text = prompt.value;
      if (mode === "generate" && text && where.value === "browser") {
        prefix = Int32Array.from(
          (await getJson<{ ids: number[] }>("/api/run/tokenize", {
            run: id,
            text,
          })).ids,
        );
      }
      // Infilling: the denoisers get the row with the hidden positions masked.
      const source = panels.find((p) => p.hidden.size > 0);
      const fillRow = (p: Panel) => {
        if (!source) return undefined;
        return source.row.map((
          x,
          i,
        ) => (source.hidden.has(i) ? p.info.maskId! : x));
      };
      const active = mode === "fill"
        ? panels.filter((p) => p.fillsBlanks)
        : panels;
      const jobs = active.map(async (p) => {
        p.running = true;
        try {
          const tokens = mode === "fill" ? fillRow(p) : undefined;
          if (where.value === "browser") {
            await runBrowser(
              p,
              tokens ? { prompt: Int32Array.from(tokens) } : { prefix },
              signal,
            );
          } else {
            await runServer(p, {
              run: id,
              seed,
              model: p.info.kind,
              ...(tokens ? { tokens } : text ? { prompt: text } : {}),
              ...(p.info.network === "causal" || p.ownGenerator
                ? {}
                : { steps: s.steps, sampler: s.sampler }),
              temperature: s.temperature,
              topP: s.topP,
              rng: s.rng,
            }, signal);
          }
        } catch (e) {
          if ((e as Error).name !== "AbortError") {
            p.stats(`error: ${(e as Error).message}`);
          }
        } finally {
          p.running = false;
        }
      });
      await Promise.all(jobs);
      if (current === ctl) {
        go.disabled = false;
        stop.disabled = true;
        fill.disabled = !panels.some((p) => p.hidden.size > 0);
        message.textContent = ctl.signal.aborted
          ? "Stopped."
          : panels.some((p) => p.fillsBlanks)
          ? "Done. Click tokens of a denoiser's row to hide them, then fill them in (not block diffusion's)."
          : "Done.";
        el.dataset.done = String(Number(el.dataset.done ?? 0) + 1);
      }
    };
    go.addEventListener("click", () => start("generate"));
    fill.addEventListener("click", () => start("fill"));
    stop.addEventListener("click", () => current?.abort());
  })();
  return () => {
    abort.abort();
    BrowserModel.releaseAll();
  };
}

function statsText(p: Panel, f: Frame, elapsed: number, where: string): string {
  const what = p.info.network === "causal"
    ? `token ${f.step}/${f.steps}`
    : p.ownGenerator
    ? `its own generator: step ${f.step}/${f.steps}`
    : p.stepsPerBlock !== undefined
    ? `step ${f.step}/${f.steps} (${p.stepsPerBlock}/block: block ${
      Math.ceil(f.step / p.stepsPerBlock)
    }/${Math.round(f.steps / p.stepsPerBlock)}) · ${p.masked(f.tokens)} masked`
    : `step ${f.step}/${f.steps} · ${p.masked(f.tokens)} masked`;
  return `${what} · ${(f.tokensPerSecond ?? 0).toFixed(1)} tokens/s · ${
    (f.batchesPerSecond ?? 0).toFixed(3)
  } batches/s · ${f.forwardPasses} passes · ${elapsed.toFixed(1)} s · ${where}`;
}
