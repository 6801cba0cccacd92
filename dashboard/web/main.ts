/// <reference lib="dom" />
// The dashboard's page: a hash router over the runs page, a run page, the
// comparison and the playground.
import { STATIC } from "./api.ts";
import { BrowserModel, webgpuStatus } from "./browser_engine.ts";
import { h, mount } from "./dom.ts";
import { playground } from "./playground.ts";
import { comparePage, runPage } from "./run_page.ts";
import { runsPage } from "./runs_page.ts";

let leave: () => void = () => {};

function route(): void {
  leave();
  const app = document.getElementById("app")!;
  const hash = location.hash.replace(/^#/, "") || "/";
  const [, page, arg = ""] = hash.match(/^\/([a-z]*)\/?(.*)$/) ?? [];
  document.querySelectorAll("nav a").forEach((a) =>
    a.classList.toggle("active", a.getAttribute("href") === `#/${page}`)
  );
  if (page === "run" && arg) leave = runPage(app, decodeURIComponent(arg));
  else if (page === "play" && arg) {
    leave = STATIC
      ? (mount(
        app,
        h(
          "p",
          { class: "warn" },
          "The playground needs the server: run deno task serve.",
        ),
      ),
        () => {})
      : playground(app, decodeURIComponent(arg));
  } else if (page === "compare" && arg) {
    leave = comparePage(app, arg.split(",").map(decodeURIComponent));
  } else leave = runsPage(app);
}

globalThis.addEventListener("hashchange", route);
route();
if (STATIC) document.getElementById("mode")!.textContent = "static export";

// For tests and the curious: the in-browser engine from the console.
(globalThis as unknown as { d3pm: unknown }).d3pm = {
  BrowserModel,
  webgpuStatus,
};
