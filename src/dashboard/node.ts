import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";

/** A Node request listener (node:http, Express, Fastify's raw request) in front of a fetch handler. */
export type NodeListener = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;

/** The `Request` a Node request stands for; Express's mount path is kept (`originalUrl`). */
function toRequest(req: IncomingMessage & { originalUrl?: string; body?: unknown }, signal: AbortSignal): Request {
  const encrypted = (req.socket as TLSSocket).encrypted === true;
  const host = req.headers.host ?? "localhost";
  const url = new URL(req.originalUrl ?? req.url ?? "/", `${encrypted ? "https" : "http"}://${host}`);
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name.startsWith(":")) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  const method = req.method ?? "GET";
  if (method === "GET" || method === "HEAD") return new Request(url, { method, headers, signal });
  // A body parser mounted before the dashboard has consumed the stream: rebuild the form it parsed.
  if (req.readableEnded && req.body !== null && typeof req.body === "object") {
    const form = new URLSearchParams(req.body as Record<string, string>).toString();
    headers.delete("content-length");
    return new Request(url, { method, headers, body: form, signal });
  }
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      req.on("data", (chunk: Buffer) => controller.enqueue(new Uint8Array(chunk)));
      req.on("end", () => controller.close());
      req.on("error", (error) => controller.error(error));
    },
    cancel() {
      req.destroy();
    },
  });
  return new Request(url, { method, headers, body, signal, duplex: "half" } as RequestInit);
}

/**
 * Serve a fetch handler from Node's HTTP server, Express (`app.use("/admin/jobs", listener)`) or
 * anything else that hands out `IncomingMessage`/`ServerResponse`. Responses stream, so live
 * updates (Server-Sent Events) work; a client that goes away aborts the request's signal.
 */
export function toNodeListener(handler: (request: Request) => Promise<Response>): NodeListener {
  return (req, res, next) => {
    const aborted = new AbortController();
    res.on("close", () => aborted.abort());
    (async () => {
      const response = await handler(toRequest(req, aborted.signal));
      const headers: Record<string, string | string[]> = {};
      response.headers.forEach((value, name) => {
        if (name !== "set-cookie") headers[name] = value;
      });
      const cookies = response.headers.getSetCookie();
      if (cookies.length > 0) headers["set-cookie"] = cookies;
      res.writeHead(response.status, headers);
      if (response.body === null) {
        res.end();
        return;
      }
      res.flushHeaders();
      const reader = response.body.getReader();
      aborted.signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!res.write(value)) {
          await new Promise((resolve) => {
            res.once("drain", resolve);
            aborted.signal.addEventListener("abort", resolve, { once: true });
          });
        }
        if (aborted.signal.aborted) return;
      }
      res.end();
    })().catch((error: unknown) => {
      if (next !== undefined) next(error);
      else if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
        res.end("Internal error");
      } else res.destroy(error as Error);
    });
  };
}
