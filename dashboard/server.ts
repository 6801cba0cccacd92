/**
 * The dashboard's HTTP server: one `Deno.serve` with the routes of
 * `routes.ts`, the page (HTML, the bundled script, CSS), and the rules that
 * keep it safe by default — loopback unless told otherwise, a token when it
 * listens beyond this machine, read-only, and nothing but the named routes.
 *
 * @module
 */
import {
  type DashboardContext,
  errorResponse,
  fileRoute,
  generateRoute,
  listRunsRoute,
  metricsRoute,
  modelRoute,
  optionsRoute,
  runRoute,
  tokenizeRoute,
  unmaskingRoute,
  vocabRoute,
} from "./routes.ts";
import { HttpError } from "./generation.ts";

/** The page's files: what `/`, `/app.js` and `/app.css` serve. */
export interface PageFiles {
  /** The HTML. */
  html: string;
  /** The bundled script. */
  js: string;
  /** The style sheet. */
  css: string;
}

/** Options of {@linkcode dashboardHandler}. */
export interface HandlerOptions {
  /** A token every request must carry (cookie, `Authorization: Bearer`, or `?token=` once). */
  token?: string;
  /** Host names the `Host` header may name (default: any). Loopback servers pass theirs, against DNS rebinding. */
  hosts?: readonly string[];
  /** The page. */
  page: PageFiles;
  /**
   * Wrong tokens a client (by remote address) may send in a minute; past
   * that its every wrong (or missing) token is 429 until the minute is
   * over (default 20). A request with the right token is never refused or
   * held back, whatever its address sent.
   */
  wrongTokensPerMinute?: number;
  /**
   * Each wrong token's 401 is held back this many ms times the client's
   * wrong tokens this minute, up to 1 s (default 100).
   */
  wrongTokenDelayMs?: number;
}

/** A client's wrong tokens: how many since when. */
interface Misses {
  count: number;
  since: number;
}

const COOKIE = "d3pm_token";

function equalConstantTime(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

// The cookie holds the token percent-encoded: a base64 token's `/ = +` are
// then `%2F %3D %2B`, which no cookie parser splits or changes.
function cookieToken(req: Request): string | undefined {
  const header = req.headers.get("cookie") ?? "";
  for (const part of header.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k !== COOKIE) continue;
    try {
      return decodeURIComponent(v.join("="));
    } catch {
      return undefined; // a malformed escape: no token
    }
  }
  return undefined;
}

/**
 * A request handler for the dashboard: authentication, host check, routing,
 * and errors as one-line JSON (an unexpected error is a 500 that names it;
 * the server keeps running).
 *
 * The streaming routes read `request.signal` as "the client is gone". Under
 * `Deno.serve`'s legacy semantics that signal also aborts after a successful
 * response (harmless here: the work is done), and Deno 2.9 warns once it is
 * read; this workspace opts in to the coming semantics (deno.json
 * `"unstable": ["no-legacy-abort"]`, or `--unstable-no-legacy-abort`), under
 * which it aborts only when the client leaves and nothing is printed.
 *
 * @param ctx What routes use.
 * @param options The token, allowed hosts and the page.
 * @returns The handler.
 * @throws {RangeError} For an empty token (only `undefined` means none).
 *
 * @example
 * ```ts
 * import { dashboardHandler, GenerationService } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * const handler = dashboardHandler(
 *   { root: "no-such-folder", generation: new GenerationService(() => Promise.reject(new Error("none"))) },
 *   { page: { html: "<p>hi</p>", js: "", css: "" } },
 * );
 * assertEquals((await (await handler(new Request("http://x/api/runs"))).json()).runs, []);
 * assertEquals((await handler(new Request("http://x/etc/passwd"))).status, 404);
 * ```
 */
export function dashboardHandler(
  ctx: DashboardContext,
  options: HandlerOptions,
): (req: Request, info?: Deno.ServeHandlerInfo) => Promise<Response> {
  // `token: ""` once meant no token: an open server for a caller who
  // thought they had set one.
  if (options.token === "") {
    throw new RangeError(
      "Cannot serve the dashboard: the token is empty; give a non-empty one, or none (undefined) for no token",
    );
  }
  const misses = new Map<string, Misses>();
  const perMinute = options.wrongTokensPerMinute ?? 20;
  const delayMs = options.wrongTokenDelayMs ?? 100;
  // Guessing is slowed per client: each wrong token answered later than
  // the last (at most 1 s), and past the minute's wrong tokens, 429.
  const wrongToken = async (client: string): Promise<Response> => {
    const now = Date.now();
    let m = misses.get(client);
    if (m && now - m.since >= 60_000) {
      misses.delete(client);
      m = undefined;
    }
    if (!m) {
      if (misses.size >= 10_000) misses.clear();
      m = { count: 0, since: now };
      misses.set(client, m);
    }
    m.count++;
    await new Promise((r) => setTimeout(r, Math.min(1000, delayMs * m!.count)));
    if (m.count <= perMinute) {
      return errorResponse(
        401,
        "This server needs its token: open the address it printed (…/?token=…)",
      );
    }
    const wait = Math.max(1, Math.ceil((m.since + 60_000 - Date.now()) / 1000));
    return new Response(
      JSON.stringify({
        error:
          `Too many wrong tokens from this client (${perMinute} a minute): try again in ${wait} s`,
      }),
      {
        status: 429,
        headers: {
          "content-type": "application/json; charset=utf-8",
          "retry-after": String(wait),
        },
      },
    );
  };
  return async (
    req: Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      return errorResponse(400, "Bad request URL");
    }
    if (options.hosts) {
      const host = (req.headers.get("host") ?? url.host).replace(/:\d+$/, "")
        .replace(/^\[|\]$/g, "");
      if (!options.hosts.includes(host)) {
        return errorResponse(
          421,
          `Host ${JSON.stringify(host.slice(0, 60))} is not this server's (${
            options.hosts.join(", ")
          })`,
        );
      }
    }
    if (options.token !== undefined) {
      const given = url.searchParams.get("token") ??
        req.headers.get("authorization")?.replace(/^Bearer\s+/i, "") ??
        cookieToken(req);
      // The token is compared first: a request carrying the right one is
      // never refused nor held back. The limit once came first, keyed by
      // the remote address, so one client's wrong tokens locked every
      // request of that address out for the minute — behind a reverse
      // proxy, everyone's; two stale tabs polling, the user's right
      // `?token=`.
      if (
        given === undefined || given === null ||
        !equalConstantTime(given, options.token)
      ) {
        return await wrongToken(clientOf(info));
      }
      if (
        url.searchParams.has("token") && req.method === "GET" &&
        url.pathname === "/"
      ) {
        // Remember it in a cookie and drop it from the address bar.
        return new Response(null, {
          status: 303,
          headers: {
            location: "/",
            "set-cookie": `${COOKIE}=${
              encodeURIComponent(options.token)
            }; Path=/; HttpOnly; SameSite=Strict`,
          },
        });
      }
    }
    try {
      return await route(ctx, options.page, req, url);
    } catch (e) {
      // The page names runs by id: an error quoting a path under the root
      // (a damaged data.json's) names it by id too, never the disk's path.
      const roots = await rootPaths(ctx.root);
      if (e instanceof HttpError) {
        return errorResponse(e.status, withoutRoot(e.message, roots));
      }
      const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      return errorResponse(
        500,
        `Internal error: ${withoutRoot(msg.split("\n")[0], roots)}`,
      );
    }
  };
}

/** The client a request came from, by address ("unknown" without one). */
function clientOf(info: Deno.ServeHandlerInfo | undefined): string {
  const addr = info?.remoteAddr as { hostname?: string } | undefined;
  return addr?.hostname ?? "unknown";
}

/**
 * The shortest token `serve` takes on an interface beyond this machine.
 *
 * @example
 * ```ts
 * import { checkListen, MIN_PUBLIC_TOKEN } from "@d3pm/dashboard";
 * import { assertThrows } from "@std/assert";
 * const short = "a".repeat(MIN_PUBLIC_TOKEN - 1);
 * assertThrows(() => checkListen({ host: "0.0.0.0", token: short }), RangeError, "must be at least 16");
 * checkListen({ host: "0.0.0.0", token: `${short}b` });
 * checkListen({ host: "127.0.0.1", token: "ab" }); // loopback: any length
 * ```
 */
export const MIN_PUBLIC_TOKEN = 16;

/** The root as given and as resolved, each ending in `/`, longest first. */
async function rootPaths(root: string): Promise<string[]> {
  const real = await Deno.realPath(root).catch(() => root);
  const abs = root.startsWith("/") ? root : `${Deno.cwd()}/${root}`;
  return [...new Set([real, abs, root])]
    .map((r) => r.endsWith("/") ? r : `${r}/`)
    .sort((a, b) => b.length - a.length);
}

function withoutRoot(message: string, roots: string[]): string {
  for (const r of roots) message = message.replaceAll(r, "");
  return message;
}

const SECURITY_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

async function route(
  ctx: DashboardContext,
  page: PageFiles,
  req: Request,
  url: URL,
): Promise<Response> {
  const q = url.searchParams;
  const p = url.pathname;
  if (req.method === "POST") {
    if (p === "/api/generate") return await generateRoute(ctx, req);
    return errorResponse(
      p.startsWith("/api/") ? 405 : 404,
      `No POST route ${p.slice(0, 80)}`,
    );
  }
  if (req.method !== "GET" && req.method !== "HEAD") {
    return errorResponse(
      405,
      `The dashboard is read-only: ${req.method} is not served`,
    );
  }
  switch (p) {
    case "/":
    case "/index.html":
      return new Response(page.html, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          "content-security-policy":
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'",
          ...SECURITY_HEADERS,
        },
      });
    case "/app.js":
      return new Response(page.js, {
        headers: {
          "content-type": "text/javascript; charset=utf-8",
          ...SECURITY_HEADERS,
        },
      });
    case "/app.css":
      return new Response(page.css, {
        headers: {
          "content-type": "text/css; charset=utf-8",
          ...SECURITY_HEADERS,
        },
      });
    case "/favicon.ico":
      return new Response(null, { status: 204 });
    case "/api/runs":
      return await listRunsRoute(ctx);
    case "/api/run":
      return await runRoute(ctx, q.get("run"));
    case "/api/run/file":
      return await fileRoute(ctx, q.get("run"), q.get("name"));
    case "/api/run/metrics":
      // A reconnecting EventSource sends its first address again, with
      // Last-Event-ID: where it got to, past any ?from= it opened at.
      return await metricsRoute(
        ctx,
        q.get("run"),
        req.headers.get("last-event-id") ?? q.get("from"),
        req.signal,
      );
    case "/api/run/model":
      return await modelRoute(ctx, q);
    case "/api/run/unmasking":
      return await unmaskingRoute(ctx, q);
    case "/api/run/vocab":
      return await vocabRoute(ctx, q.get("run"));
    case "/api/run/tokenize":
      return await tokenizeRoute(ctx, q.get("run"), q.get("text"));
    case "/api/options":
      return optionsRoute();
    case "/api/health":
      return new Response(
        JSON.stringify({
          ok: true,
          generation: {
            running: ctx.generation.running,
            completed: ctx.generation.completed,
            cancelled: ctx.generation.cancelled,
            refused: ctx.generation.refused,
            failed: ctx.generation.failed,
            invalid: ctx.generation.invalid,
          },
          memory: Deno.memoryUsage(),
        }),
        { headers: { "content-type": "application/json" } },
      );
  }
  return errorResponse(404, `Nothing at ${p.slice(0, 80)}`);
}

/** Options of {@linkcode checkListen}. */
export interface ListenOptions {
  /** The interface (default 127.0.0.1). */
  host: string;
  /** The token given, if any. */
  token?: string;
}

/**
 * Whether a host name is this machine only.
 *
 * @param host A host name or address.
 * @returns True for 127.0.0.0/8, `localhost` and `::1`.
 *
 * @example
 * ```ts
 * import { isLoopback } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals([isLoopback("127.0.0.1"), isLoopback("0.0.0.0")], [true, false]);
 * ```
 */
export function isLoopback(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost" || host === "::1" ||
    /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * What listening on `host` needs: on loopback nothing; on any other
 * interface a token (the one given, or a fresh random one) and a warning.
 *
 * @param options The host and the token given.
 * @returns The token to require (none on loopback unless given) and the warning to print.
 * @throws {RangeError} For an empty token, for one outside RFC 6750's
 *   b64token (letters, digits, `- . _ ~ + /`, then `=` padding only at the
 *   end): a space, `;`, `,`, `"`, a control character; and, beyond
 *   loopback, for one shorter than {@linkcode MIN_PUBLIC_TOKEN}.
 *
 * @example
 * ```ts
 * import { checkListen } from "@d3pm/dashboard";
 * import { assert, assertEquals, assertThrows } from "@std/assert";
 * assertThrows(() => checkListen({ host: "127.0.0.1", token: "a b;c" }), RangeError, "use letters, digits");
 * assertEquals(checkListen({ host: "127.0.0.1", token: "q+/w==" }).token, "q+/w==");
 * assertEquals(checkListen({ host: "127.0.0.1" }), { token: undefined, warning: undefined });
 * const open = checkListen({ host: "0.0.0.0" });
 * assert(open.token!.length >= 32 && open.warning!.includes("0.0.0.0"));
 * ```
 */
export function checkListen(
  options: ListenOptions,
): { token?: string; warning?: string } {
  // A token travels in the address (`?token=`, percent-encoded), a cookie
  // (percent-encoded) and an Authorization header, whose grammar is RFC
  // 6750's b64token: `--token 'a b;c'` was set as the cookie `a b` (the `;`
  // starts an attribute), and the page got 401 on every request. Base64
  // (`openssl rand -base64 32`) is within it.
  if (options.token === "") {
    throw new RangeError(
      "--token is empty: give a secret of letters, digits and - . _ ~ + / (then = padding)",
    );
  }
  if (
    options.token !== undefined &&
    !/^[A-Za-z0-9._~+/-]+=*$/.test(options.token)
  ) {
    throw new RangeError(
      `--token ${
        JSON.stringify(options.token).slice(0, 40)
      } holds a character an Authorization header cannot carry: use letters, digits and - . _ ~ + / only, then = padding at the end`,
    );
  }
  if (isLoopback(options.host)) {
    return { token: options.token, warning: undefined };
  }
  // Anyone who can reach the machine can guess: a short token was taken.
  if (
    options.token !== undefined && options.token.length < MIN_PUBLIC_TOKEN
  ) {
    throw new RangeError(
      `--token is ${options.token.length} characters: on ${options.host}, an interface beyond this machine, it must be at least ${MIN_PUBLIC_TOKEN} (e.g. openssl rand -base64 32), or leave --token out for a generated one`,
    );
  }
  const token = options.token ?? randomToken();
  return {
    token,
    warning:
      `warning: listening on ${options.host}: anyone who can reach this machine can reach the dashboard; every request must carry the token${
        options.token !== undefined
          ? " you gave"
          : ` ${token} (generated; pass --token to choose one)`
      }`,
  };
}

/**
 * The address `serve` prints: `http://HOST:PORT/`, with `?token=` holding
 * the token percent-encoded (a base64 token's `+` would come back from the
 * query as a space, its `/` and `=` are escaped too).
 *
 * @param hostname The interface listened on (an IPv6 one is bracketed).
 * @param options The port, and the token when there is one.
 * @returns The address to open once.
 *
 * @example
 * ```ts
 * import { dashboardAddress } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals(dashboardAddress("::1", { port: 8000 }), "http://[::1]:8000/");
 * assertEquals(
 *   dashboardAddress("0.0.0.0", { port: 80, token: "a+b/c=" }),
 *   "http://0.0.0.0:80/?token=a%2Bb%2Fc%3D",
 * );
 * ```
 */
export function dashboardAddress(
  hostname: string,
  options: { port: number; token?: string },
): string {
  const shown = hostname.includes(":") ? `[${hostname}]` : hostname;
  const query = options.token === undefined
    ? ""
    : `?token=${encodeURIComponent(options.token)}`;
  return `http://${shown}:${options.port}/${query}`;
}

function randomToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(24));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}
