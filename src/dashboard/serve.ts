import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createDb, ensureSchemaCompatible } from "../store/index.ts";
import { createDashboard } from "./handler.ts";
import { toNodeListener } from "./node.ts";

export interface ServeDashboardOptions {
  /** The database to show. */
  databaseUrl: string;
  /** Port to listen on (0 picks a free one). */
  port: number;
  /** Address to bind. Default 127.0.0.1: only this machine can connect. */
  host?: string;
  basePath?: string;
  readOnly?: boolean;
  /**
   * Ask every visitor for this password (HTTP basic auth, any user name). Required to bind an
   * address other than loopback unless `readOnly` is set: the standalone dashboard has no other
   * login.
   */
  password?: string;
}

export interface ServedDashboard {
  url: string;
  close(): Promise<void>;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;

function passwordMatches(request: Request, password: string): boolean {
  const header = request.headers.get("authorization") ?? "";
  if (!header.startsWith("Basic ")) return false;
  const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(decoded.slice(decoded.indexOf(":") + 1)), digest(password));
}

/**
 * Serve the dashboard on its own (what `runledger dashboard` runs): one database pool, every
 * action allowed to whoever can reach the port, so it binds to loopback unless told otherwise.
 */
export async function serveDashboard(options: ServeDashboardOptions): Promise<ServedDashboard> {
  const host = options.host ?? "127.0.0.1";
  if (!LOOPBACK.test(host) && options.password === undefined && options.readOnly !== true) {
    throw new Error(
      `refusing to serve a dashboard that can change jobs on ${host} without a password: set one, use --read-only, or bind 127.0.0.1`,
    );
  }
  const db = createDb(options.databaseUrl, { max: 4, applicationName: "runledger-dashboard" });
  let server: Server | undefined;
  try {
    await ensureSchemaCompatible(db);
    const dashboard = createDashboard({
      db,
      basePath: options.basePath,
      readOnly: options.readOnly,
      authorize: () => true,
    });
    const password = options.password;
    const handler =
      password === undefined
        ? dashboard
        : async (request: Request) =>
            passwordMatches(request, password)
              ? dashboard(request)
              : new Response("Password required.", {
                  status: 401,
                  headers: { "www-authenticate": 'Basic realm="runledger", charset="UTF-8"' },
                });
    const listening = createServer(toNodeListener(handler));
    server = listening;
    await new Promise<void>((resolve, reject) => {
      listening.once("error", reject);
      listening.listen(options.port, host, () => resolve());
    });
    const address = listening.address() as AddressInfo;
    const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return {
      url: `http://${shown}:${address.port}${(options.basePath ?? "/").replace(/\/?$/, "/")}`,
      async close() {
        listening.closeAllConnections();
        await new Promise<void>((resolve) => listening.close(() => resolve()));
        await db.$runledger.close();
      },
    };
  } catch (error) {
    server?.close();
    await db.$runledger.close();
    throw error;
  }
}
