// `deno task bundle`: build the dashboard's page script (dashboard/dist/app.js).
import { buildBundle } from "./page.ts";

if (import.meta.main) {
  const { path, rebuilt } = await buildBundle({
    force: Deno.args.includes("--force"),
    log: console.error,
  });
  console.error(rebuilt ? `wrote ${path}` : `${path} is up to date`);
}
