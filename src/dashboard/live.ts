import {
  CANCEL_CHANNEL,
  JOBS_CHANNEL,
  type RunledgerDb,
  type Subscription,
  WORKFLOWS_CHANNEL,
} from "../store/index.ts";

/*
 * Live updates: one LISTEN per dashboard (opened with the first open page, closed with the last)
 * fans notifications out to every Server-Sent Events stream. Each stream sends `refresh` at most
 * once per minimum interval however many notifications arrive, and once per poll interval without
 * any, since not every change notifies (a worker finishing a job does not).
 */

const CHANNELS = [JOBS_CHANNEL, CANCEL_CHANNEL, WORKFLOWS_CHANNEL];
const KEEPALIVE_MS = 15_000;

export class LiveHub {
  readonly #db: RunledgerDb;
  readonly #onError: (error: unknown) => void;
  readonly #listeners = new Set<() => void>();
  #subscriptions: Promise<Subscription[]> | undefined;

  constructor(db: RunledgerDb, onError: (error: unknown) => void) {
    this.#db = db;
    this.#onError = onError;
  }

  /** Call `onChange` on every notification until the returned function is called. */
  subscribe(onChange: () => void): () => void {
    this.#listeners.add(onChange);
    if (this.#subscriptions === undefined) {
      const notify = () => {
        for (const listener of this.#listeners) listener();
      };
      // `onListen` also runs after a reconnect: changes missed meanwhile deserve a refresh.
      this.#subscriptions = Promise.all(CHANNELS.map((channel) => this.#db.$runledger.listen(channel, notify, notify)));
      this.#subscriptions.catch((error) => {
        this.#subscriptions = undefined;
        this.#onError(error);
      });
    }
    return () => {
      this.#listeners.delete(onChange);
      if (this.#listeners.size === 0) this.#close();
    };
  }

  #close(): void {
    const subscriptions = this.#subscriptions;
    this.#subscriptions = undefined;
    subscriptions
      ?.then((subs) => Promise.all(subs.map((s) => s.unlisten())))
      .catch(() => {
        // Already reported when listening failed; a failed unlisten leaves nothing to clean.
      });
  }
}

/** An SSE response for one page: `refresh` events, throttled to `minIntervalMs`, ticking every `pollIntervalMs`. */
export function eventStream(
  hub: LiveHub,
  signal: AbortSignal,
  timing: { minIntervalMs: number; pollIntervalMs: number },
): Response {
  const encoder = new TextEncoder();
  let cleanup = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      let lastSent = 0;
      let pending: ReturnType<typeof setTimeout> | undefined;
      let closed = false;
      const write = (text: string) => {
        if (closed) return;
        try {
          controller.enqueue(encoder.encode(text));
        } catch {
          cleanup();
        }
      };
      const send = () => {
        pending = undefined;
        lastSent = Date.now();
        write("event: refresh\ndata: {}\n\n");
      };
      const changed = () => {
        if (pending !== undefined) return;
        const wait = lastSent + timing.minIntervalMs - Date.now();
        if (wait <= 0) send();
        else pending = setTimeout(send, wait);
      };
      const unsubscribe = hub.subscribe(changed);
      const tick = setInterval(() => {
        if (Date.now() - lastSent >= timing.pollIntervalMs - 50) changed();
      }, timing.pollIntervalMs);
      const keepalive = setInterval(() => write(": keepalive\n\n"), KEEPALIVE_MS);
      cleanup = () => {
        if (closed) return;
        closed = true;
        clearTimeout(pending);
        clearInterval(tick);
        clearInterval(keepalive);
        unsubscribe();
        try {
          controller.close();
        } catch {
          // The consumer already went away.
        }
      };
      signal.addEventListener("abort", cleanup, { once: true });
      // The browser reconnects after `retry` ms if the stream drops.
      write(`retry: ${timing.pollIntervalMs}\nevent: ready\ndata: {}\n\n`);
    },
    cancel() {
      cleanup();
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    },
  });
}
