import { once } from "node:events";
import net from "node:net";

/**
 * A TCP relay to PostgreSQL that can be stopped (every connection cut, new ones refused) and
 * started again on the same port: a database that disappears without touching the server.
 */
export class Relay {
  readonly #target: { host: string; port: number };
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | undefined;
  port = 0;
  /** Connections the relay has accepted since it was made. */
  accepted = 0;

  constructor(target: { host: string; port: number }) {
    this.#target = target;
  }

  /** A relay to the server of `url`. */
  static to(url: string): Relay {
    const target = new URL(url);
    return new Relay({ host: target.hostname, port: Number(target.port || 5432) });
  }

  /** `url` with its host and port replaced by the relay's (start it first). */
  url(url: string): string {
    const relayed = new URL(url);
    relayed.hostname = "127.0.0.1";
    relayed.port = String(this.port);
    return relayed.toString();
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      this.accepted++;
      const upstream = net.connect(this.#target.port, this.#target.host);
      for (const socket of [client, upstream]) {
        this.#sockets.add(socket);
        socket.on("close", () => this.#sockets.delete(socket));
        socket.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    server.listen(this.port, "127.0.0.1");
    await once(server, "listening");
    this.port = (server.address() as net.AddressInfo).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server === undefined) return;
    const closed = once(server, "close");
    server.close();
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}
