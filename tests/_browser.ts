// Headless Chromium for the dashboard's browser tests and screenshots:
// Debian's chromium (tools/setup.sh installs it) driven by puppeteer-core,
// with WebGPU on (SwiftShader when there is no GPU), nothing fetched from
// the network, and a fresh profile.
import puppeteer, { type Browser } from "puppeteer-core";

/** Where the browser is looked for (`D3PM_CHROMIUM` overrides). */
export const CHROMIUM: string = Deno.env.get("D3PM_CHROMIUM") ??
  "/usr/bin/chromium";

/** Why no browser can run here, or null when one can. */
export async function chromiumMissing(): Promise<string | null> {
  try {
    const info = await Deno.stat(CHROMIUM);
    if (!info.isFile) return `${CHROMIUM} is not a file`;
  } catch {
    return `no ${CHROMIUM} (bash tools/setup.sh installs Debian's chromium; D3PM_CHROMIUM names another)`;
  }
  return null;
}

/** Start headless Chromium with WebGPU enabled. */
export async function launchChromium(): Promise<
  { browser: Browser; close: () => Promise<void> }
> {
  const profile = await Deno.makeTempDir({ prefix: "d3pm-chromium-" });
  // Chromium's own runtime folder, in its profile: GLib writes dconf/ into
  // XDG_RUNTIME_DIR, and the one this process inherited (or the backend
  // ladder made, d3pm-xdg-*) is removed when this process ends — a dconf/
  // written there by a Chromium helper still running then re-created it
  // (two leftovers in a CI run). GSettings in memory writes no dconf/ at all.
  const runtime = `${profile}/xdg`;
  await Deno.mkdir(runtime, { mode: 0o700 });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: {
      ...Deno.env.toObject(),
      XDG_RUNTIME_DIR: runtime,
      GSETTINGS_BACKEND: "memory",
    },
    args: [
      "--no-sandbox",
      "--enable-unsafe-webgpu",
      "--enable-features=Vulkan",
      "--use-angle=swiftshader",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-default-apps",
      "--no-first-run",
      "--no-default-browser-check",
      `--user-data-dir=${profile}`,
    ],
  }).catch(async (e) => {
    // A browser that did not start leaves its profile: removed here.
    await Deno.remove(profile, { recursive: true }).catch(() => {});
    throw e;
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}
