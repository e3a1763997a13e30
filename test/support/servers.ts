// Servers a test starts for itself: a PgBouncer in transaction mode and a throwaway PostgreSQL
// cluster (initdb into a temporary directory, on a free port, restartable). Both refuse to run as
// root, so under root they run as the `postgres` user in a directory it owns.
import { type ChildProcess, spawn } from "node:child_process";
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { finished, type ProcessResult, run } from "./processes.ts";
import { waitFor } from "./wait.ts";

const IS_ROOT = process.getuid?.() === 0;

/** A port nobody listens on now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port")),
      );
    });
  });
}

/** A temporary directory the server's user may write. */
function serverDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (IS_ROOT) chownSync(dir, postgresIds().uid, postgresIds().gid);
  return dir;
}

function postgresIds(): { uid: number; gid: number } {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  if (line === undefined) throw new Error("running as root needs a `postgres` user to run the servers as");
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/** The command line, run as `postgres` when we are root. */
function asServerUser(command: string, args: string[]): [string, string[]] {
  return IS_ROOT ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
}

async function runChecked(command: string, args: string[]): Promise<ProcessResult> {
  const [cmd, argv] = asServerUser(command, args);
  const result = await run(cmd, argv, {}, tmpdir());
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(" ")} failed (${result.code}): ${result.stderr}${result.stdout}`);
  }
  return result;
}

/** Where a binary is, or a clear error naming the Debian package that has it. */
function requireBinary(candidates: string[], pkg: string): string {
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(
      `${candidates[0]} is missing: install the Debian package \`${pkg}\` (apt-get install -y ${pkg}); .ci/run does.`,
    );
  }
  return found;
}

/** A running PgBouncer of the test's own. */
export interface PgBouncer {
  port: number;
  /** A URL for `database` through the pooler. */
  url(database: string): string;
  /** What PgBouncer logged (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Start PgBouncer (Debian's `pgbouncer`) in transaction mode on a free port, forwarding every
 * database to `server` with `poolSize` server connections per database and user.
 */
export async function startPgBouncer(
  server: { host: string; port: number },
  options: { poolSize?: number } = {},
): Promise<PgBouncer> {
  const binary = requireBinary(["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"], "pgbouncer");
  const dir = serverDir("runledger-pgbouncer-");
  const port = await freePort();
  writeFileSync(join(dir, "userlist.txt"), '"postgres" ""\n');
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${server.host} port=${server.port}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      "admin_users = postgres",
      `auth_file = ${join(dir, "userlist.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize ?? 8}`,
      "max_client_conn = 500",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      "ignore_startup_parameters = extra_float_digits,options",
      "",
    ].join("\n"),
  );
  if (IS_ROOT) for (const file of readdirSync(dir)) chownSync(join(dir, file), postgresIds().uid, postgresIds().gid);
  const [cmd, argv] = asServerUser(binary, [join(dir, "pgbouncer.ini")]);
  // A process group of its own, so stop() ends runuser and PgBouncer together.
  const child: ChildProcess = spawn(cmd, argv, { cwd: dir, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const exit = finished(child);
  const log = () => (existsSync(join(dir, "pgbouncer.log")) ? readFileSync(join(dir, "pgbouncer.log"), "utf8") : "");
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`pgbouncer exited: ${(await exit).stderr}${log()}`);
        return log().includes("process up");
      },
      { timeoutMs: 20_000, everyMs: 50, what: "PgBouncer to listen" },
    );
  } catch (error) {
    if (child.exitCode === null) process.kill(-child.pid!, "SIGKILL");
    throw error;
  }
  return {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, "SIGTERM");
      await exit;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A PostgreSQL cluster of the test's own. */
export interface Cluster {
  port: number;
  url(database: string): string;
  /** `pg_ctl restart` in `fast` or `immediate` mode. */
  restart(mode: "fast" | "immediate"): Promise<void>;
  /** Stop the server and delete its directory. */
  destroy(): Promise<void>;
}

/** The newest installed PostgreSQL's bin directory (Debian layout), or a clear error. */
function postgresBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(`no ${root}/<version>/bin/initdb: install the Debian package \`postgresql\`; .ci/run does.`);
  }
  return join(root, versions[0]!, "bin");
}

/**
 * initdb a cluster into a temporary directory and start it on a free port (trust auth on
 * 127.0.0.1, no Unix socket). `maxConnections` bounds it as CI's server would be; `tls` turns
 * on SSL with a self-signed certificate for `localhost` (made with openssl).
 */
export async function startCluster(options: { maxConnections?: number; tls?: boolean } = {}): Promise<Cluster> {
  const bin = postgresBin();
  const dir = serverDir("runledger-cluster-");
  const data = join(dir, "data");
  const port = await freePort();
  await runChecked(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const settings = [
    `-p ${port}`,
    "-h 127.0.0.1",
    "-k ''",
    `-c max_connections=${options.maxConnections ?? 100}`,
    "-c fsync=off",
    "-c shared_buffers=32MB",
  ];
  if (options.tls === true) {
    const [cert, key] = [join(dir, "server.crt"), join(dir, "server.key")];
    await runChecked("openssl", [
      "req",
      "-new",
      "-x509",
      "-days",
      "2",
      "-nodes",
      "-subj",
      "/CN=localhost",
      "-keyout",
      key,
      "-out",
      cert,
    ]);
    chmodSync(key, 0o600);
    settings.push("-c ssl=on", `-c ssl_cert_file=${cert}`, `-c ssl_key_file=${key}`);
  }
  const serverOptions = settings.join(" ");
  const pgCtl = join(bin, "pg_ctl");
  const ctl = (args: string[]) => runChecked(pgCtl, ["-D", data, "-l", join(dir, "server.log"), ...args]);
  await ctl(["-o", serverOptions, "-w", "-t", "60", "start"]);
  return {
    port,
    url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async restart(mode) {
      await ctl(["-o", serverOptions, "-m", mode, "-w", "-t", "60", "restart"]);
    },
    async destroy() {
      await ctl(["-m", "immediate", "-w", "stop"]).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
