import net from "node:net";
import postgres from "postgres";

/**
 * A postgres.js client whose connections run on sockets the test holds (`sockets`, in the order
 * they were opened), so a test can close one at an exact point of the driver's work. postgres.js
 * takes a function giving it a connected socket (`socket`); its type declarations leave that
 * option out.
 */
export function clientOnOwnSockets(
  url: string,
  options: postgres.Options<Record<string, never>>,
): { sql: postgres.Sql; sockets: net.Socket[] } {
  const { hostname, port } = new URL(url);
  const sockets: net.Socket[] = [];
  const socket = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const opened = net.connect(Number(port || 5432), hostname);
      sockets.push(opened);
      opened.once("connect", () => resolve(opened));
      opened.once("error", reject);
    });
  const settings = { fetch_types: false, onnotice: () => {}, ...options, socket };
  return { sql: postgres(url, settings as postgres.Options<Record<string, never>>), sockets };
}
