import postgres from "postgres";

/** The server used when no URL is configured: the local PostgreSQL most development machines run. */
export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres";

export const NO_SERVER_HELP = [
  "runledger/testing could not reach a PostgreSQL server.",
  "Provide one of:",
  "  - RUNLEDGER_TEST_DATABASE_URL or DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres",
  "    (the user must be allowed to CREATE DATABASE);",
  `  - a server listening at ${DEFAULT_DATABASE_URL};`,
  "  - a Docker engine plus the optional packages testcontainers and @testcontainers/postgresql",
  "    (image from RUNLEDGER_TEST_PG_IMAGE, default postgres:18).",
].join("\n");

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export function adminClient(url: string): postgres.Sql {
  return postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
}

async function reachable(url: string): Promise<boolean> {
  const client = adminClient(url);
  try {
    await client`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await client.end({ timeout: 1 });
  }
}

interface Container {
  getConnectionUri(): string;
  stop(): Promise<unknown>;
}

let containerUrl: Promise<string> | undefined;

/** Start (once per process) a PostgreSQL container, if testcontainers and a Docker engine are there. */
async function startContainer(): Promise<string | undefined> {
  let module: { PostgreSqlContainer: new (image: string) => { start(): Promise<Container> } };
  try {
    // Optional peer dependency; 12.x throws at import on Node 20, so import lazily and tolerate failure.
    module = (await import(["@testcontainers", "postgresql"].join("/"))) as typeof module;
  } catch {
    return undefined;
  }
  try {
    const container = await new module.PostgreSqlContainer(
      process.env.RUNLEDGER_TEST_PG_IMAGE ?? "postgres:18",
    ).start();
    process.once("exit", () => void container.stop());
    return container.getConnectionUri();
  } catch {
    return undefined;
  }
}

/**
 * Find the server tests run against: `RUNLEDGER_TEST_DATABASE_URL`, then `DATABASE_URL`, then the
 * local default, then a testcontainers PostgreSQL. Throws an error that says how to provide one.
 */
export async function resolveServerUrl(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const configured = env.RUNLEDGER_TEST_DATABASE_URL || env.DATABASE_URL;
  if (configured) {
    if (await reachable(configured)) return configured;
    throw new Error(`${NO_SERVER_HELP}\nThe configured URL did not answer.`);
  }
  if (await reachable(DEFAULT_DATABASE_URL)) return DEFAULT_DATABASE_URL;
  containerUrl ??= startContainer().then((url) => {
    if (url === undefined) throw new Error(NO_SERVER_HELP);
    return url;
  });
  return containerUrl;
}
