// A token on a public interface took any length, and nothing slowed a
// client guessing it: a short token is refused at start, and each client's
// wrong tokens are answered later and later, then refused for the minute.
import { assert, assertEquals, assertMatch, assertThrows } from "@std/assert";
import {
  checkListen,
  dashboardHandler,
  GenerationService,
  MIN_PUBLIC_TOKEN,
} from "./mod.ts";

Deno.test("checkListen() refuses a token shorter than 16 characters beyond loopback in one line naming what is taken; 16 is taken, and any length on loopback", () => {
  const e = assertThrows(
    () => checkListen({ host: "0.0.0.0", token: "abcdefghijklmno" }),
    RangeError,
  );
  assertEquals(
    e.message,
    "--token is 15 characters: on 0.0.0.0, an interface beyond this machine, it must be at least 16 (e.g. openssl rand -base64 32), or leave --token out for a generated one",
  );
  assertEquals(MIN_PUBLIC_TOKEN, 16);
  const sixteen = "abcdefghijklmnop";
  assertEquals(checkListen({ host: "0.0.0.0", token: sixteen }).token, sixteen);
  assertEquals(checkListen({ host: "127.0.0.1", token: "ab" }).token, "ab");
});

Deno.test("wrong tokens are answered later the more a client sends, then 429 for the minute, while its right token — and another client's — is served at once", async () => {
  const token = "0123456789abcdef0123";
  const handler = dashboardHandler({
    root: "no-such-folder",
    generation: new GenerationService(() => Promise.reject(new Error("none"))),
  }, {
    token,
    page: { html: "", js: "", css: "" },
    wrongTokensPerMinute: 3,
    wrongTokenDelayMs: 60,
  });
  const from = (hostname: string) =>
    ({
      remoteAddr: { hostname, port: 4000, transport: "tcp" },
      completed: Promise.resolve(),
    }) as unknown as Deno.ServeHandlerInfo;
  const ask = async (bearer: string, client: string) => {
    const t0 = performance.now();
    const r = await handler(
      new Request("http://127.0.0.1/api/runs", {
        headers: { authorization: `Bearer ${bearer}` },
      }),
      from(client),
    );
    const body = await r.json();
    return { status: r.status, ms: performance.now() - t0, body, r };
  };
  const times: number[] = [];
  for (let i = 1; i <= 3; i++) {
    const a = await ask("wrong-token-guess", "10.0.0.1");
    assertEquals(a.status, 401);
    times.push(a.ms);
  }
  // 60, 120, 180 ms (timers fire no earlier than asked).
  assert(times[0] >= 55 && times[1] >= 115 && times[2] >= 175, `${times}`);
  const limited = await ask("wrong-token-guess", "10.0.0.1");
  assertEquals(limited.status, 429);
  assertMatch(
    limited.body.error,
    /^Too many wrong tokens from this client \(3 a minute\): try again in (59|60) s$/,
  );
  assertMatch(limited.r.headers.get("retry-after")!, /^(59|60)$/);
  // The right token from the limited address: served, not held back.
  const right = await ask(token, "10.0.0.1");
  assertEquals([right.status, right.body.runs], [200, []]);
  assert(right.ms < 50, `${right.ms} ms`);
  const other = await ask(token, "10.0.0.2");
  assertEquals([other.status, other.body.runs], [200, []]);
});

Deno.test("behind a reverse proxy (every request from one address) two stale tabs polling with an old token do not lock out the user's right ?token=", async () => {
  const token = "0123456789abcdef0123";
  const handler = dashboardHandler({
    root: "no-such-folder",
    generation: new GenerationService(() => Promise.reject(new Error("none"))),
  }, {
    token,
    page: { html: "", js: "", css: "" },
    wrongTokensPerMinute: 4,
    wrongTokenDelayMs: 1,
  });
  const proxy = {
    remoteAddr: { hostname: "127.0.0.1", port: 4000, transport: "tcp" },
    completed: Promise.resolve(),
  } as unknown as Deno.ServeHandlerInfo;
  const get = (path: string, cookie?: string) =>
    handler(
      new Request(`http://127.0.0.1${path}`, {
        headers: cookie ? { cookie: `d3pm_token=${cookie}` } : {},
      }),
      proxy,
    );
  const stale: number[] = [];
  for (let i = 0; i < 10; i++) {
    const r = await get("/api/runs", "old-token-of-a-stale-tab");
    await r.body?.cancel();
    stale.push(r.status);
  }
  assertEquals(stale, [401, 401, 401, 401, 429, 429, 429, 429, 429, 429]);
  const opened = await get(`/?token=${token}`);
  await opened.body?.cancel();
  assertEquals(opened.status, 303);
  const api = await get("/api/runs", token);
  assertEquals([api.status, (await api.json()).runs], [200, []]);
});
