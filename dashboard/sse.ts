/**
 * Server-sent events: a response whose body is the events an async source
 * yields, with a comment line every few seconds so proxies keep it open,
 * and the source closed when the client goes away.
 *
 * @module
 */

/** One server-sent event. */
export interface ServerEvent {
  /** The event's name (default: `message`). */
  event?: string;
  /** Its data (one line, or several: each becomes a `data:` line). */
  data: string;
  /** Its id: what the client sends back as `Last-Event-ID` on reconnecting. */
  id?: string;
}

/**
 * The wire form of one event.
 *
 * @param e The event.
 * @returns Its text, ending with the blank line.
 *
 * @example
 * ```ts
 * import { formatEvent } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * assertEquals(formatEvent({ event: "frame", data: "a\nb", id: "7" }), "event: frame\nid: 7\ndata: a\ndata: b\n\n");
 * ```
 */
export function formatEvent(e: ServerEvent): string {
  let out = "";
  if (e.event) out += `event: ${e.event.replace(/[\r\n]/g, "")}\n`;
  if (e.id !== undefined) out += `id: ${e.id.replace(/[\r\n]/g, "")}\n`;
  for (const line of e.data.split(/\r?\n/)) out += `data: ${line}\n`;
  return out + "\n";
}

/** Options of {@linkcode eventResponse}. */
export interface EventResponseOptions {
  /**
   * Aborted when the client disconnects (the request's signal) or the
   * server shuts down: the source is closed and so is the body, so a
   * server's graceful shutdown does not wait for a stream without end.
   */
  signal?: AbortSignal;
  /** A keep-alive comment every this many ms (default 15,000). */
  keepAliveMs?: number;
  /** Called once the stream is over, whichever way. */
  onClose?: () => void;
  /** Extra headers. */
  headers?: Record<string, string>;
}

/**
 * A `text/event-stream` response of the events `source` yields. When the
 * client disconnects, the source's `return()` is called (its `finally`
 * blocks run) and `onClose` fires.
 *
 * @param source The events.
 * @param options The client's signal, keep-alive interval, close hook.
 * @returns The response.
 *
 * @example
 * ```ts
 * import { eventResponse } from "@d3pm/dashboard";
 * import { assertEquals } from "@std/assert";
 * async function* two() { yield { data: "1" }; yield { data: "2" }; }
 * const text = await eventResponse(two()).text();
 * assertEquals(text, "data: 1\n\ndata: 2\n\n");
 * ```
 */
export function eventResponse(
  source: AsyncIterator<ServerEvent> | AsyncIterable<ServerEvent>,
  options: EventResponseOptions = {},
): Response {
  const it: AsyncIterator<ServerEvent> = Symbol.asyncIterator in source
    ? (source as AsyncIterable<ServerEvent>)[Symbol.asyncIterator]()
    : source as AsyncIterator<ServerEvent>;
  const enc = new TextEncoder();
  let timer: ReturnType<typeof setInterval> | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (timer !== undefined) clearInterval(timer);
    options.signal?.removeEventListener("abort", aborted);
    it.return?.().catch(() => {});
    options.onClose?.();
  };
  let aborted = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      aborted = () => {
        close();
        try {
          controller.close(); // the body ends: nothing waits on it
        } catch { /* already closed or cancelled */ }
      };
      // Already aborted: close now and start no keep-alive timer (one set
      // after close() would never be cleared and keep the process alive).
      if (options.signal?.aborted) return aborted();
      options.signal?.addEventListener("abort", aborted, { once: true });
      timer = setInterval(() => {
        try {
          controller.enqueue(enc.encode(": keep-alive\n\n"));
        } catch {
          close();
        }
      }, options.keepAliveMs ?? 15_000);
    },
    async pull(controller) {
      try {
        const r = await it.next();
        if (closed) return;
        if (r.done) {
          close();
          controller.close();
          return;
        }
        controller.enqueue(enc.encode(formatEvent(r.value)));
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (!closed) {
          controller.enqueue(
            enc.encode(
              formatEvent({
                event: "error",
                data: JSON.stringify({ error: msg }),
              }),
            ),
          );
          close();
          controller.close();
        }
      }
    },
    cancel() {
      close();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      // no-transform: Deno.serve would otherwise gzip the stream for a
      // browser and hold events back until its buffer fills.
      "cache-control": "no-store, no-transform",
      "x-accel-buffering": "no",
      ...options.headers,
    },
  });
}
