import { COMMON_OPTIONS, type Command, databaseUrl, redactUrl } from "./command.ts";
import { UsageError } from "./output.ts";

/** `runledger dashboard`: serve the web dashboard until interrupted. */
export const dashboardCommand: Command = {
  name: "dashboard",
  summary: "serve the web dashboard until interrupted",
  usage: `usage: runledger dashboard [--port N] [--host ADDR] [--base-path /PATH] [--read-only]
                         [--database-url URL]

Serves the web dashboard for the database until SIGINT/SIGTERM.
  --port N           default 4000 (0: any free port)
  --host ADDR        default 127.0.0.1; another host needs --read-only or
                     RUNLEDGER_DASHBOARD_PASSWORD (HTTP basic auth)
  --base-path /PATH  mount path, default /
  --read-only        no buttons; every change is refused with 405
`,
  options: {
    port: { type: "string", default: "4000" },
    host: { type: "string", default: "127.0.0.1" },
    "base-path": { type: "string", default: "/" },
    "read-only": { type: "boolean", default: false },
    "database-url": COMMON_OPTIONS["database-url"],
    help: COMMON_OPTIONS.help,
  },
  async run(ctx) {
    const values = ctx.values as { port: string; host: string; "base-path": string; "read-only": boolean };
    const port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port > 65535) {
      throw new UsageError(`runledger dashboard: --port must be a port number, not ${JSON.stringify(values.port)}`);
    }
    const url = databaseUrl(ctx.values);
    // Loaded only for this command: the other commands never load the dashboard.
    const { serveDashboard } = await import("../dashboard/index.ts");
    const password = process.env.RUNLEDGER_DASHBOARD_PASSWORD;
    const served = await serveDashboard({
      databaseUrl: url,
      port,
      host: values.host,
      basePath: values["base-path"],
      readOnly: values["read-only"],
      password: password === undefined || password === "" ? undefined : password,
    });
    ctx.out.write(
      `runledger dashboard for ${redactUrl(url)} at ${served.url}${values["read-only"] ? " (read-only)" : ""}\n`,
    );
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await served.close();
    return 0;
  },
};
