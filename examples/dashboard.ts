// The dashboard inside your own Node server, under /admin/jobs, behind your own login. Here the
// "login" is HTTP basic auth with two users: `admin` may change things, `viewer` only looks (the
// pages show viewers no buttons, and the server refuses their changes). Both see one
// organization's jobs: the scope comes from the user, as it would from your session.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/app DASHBOARD_PASSWORD=secret npx tsx examples/dashboard.ts
//   then open http://127.0.0.1:3000/admin/jobs/ as admin or viewer
import { timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { createDashboard, type DashboardScope, toNodeListener } from "runledger/dashboard";
import { createDb, ensureSchemaCompatible } from "runledger/store";

const url = process.env.DATABASE_URL;
const password = process.env.DASHBOARD_PASSWORD;
if (!url || !password) {
  console.error("Set DATABASE_URL and DASHBOARD_PASSWORD");
  process.exit(2);
}
const ORGANIZATION = process.env.ORGANIZATION_ID ?? "0190f0a0-0000-7000-8000-000000000001";

/** Your session lookup; here, the user named in the basic-auth header when the password matches. */
function userOf(request: Request): { name: "admin" | "viewer"; scope: DashboardScope } | undefined {
  const header = request.headers.get("authorization") ?? "";
  const [name, given = ""] = Buffer.from(header.replace(/^Basic /, ""), "base64")
    .toString("utf8")
    .split(":");
  const matches = given.length === password!.length && timingSafeEqual(Buffer.from(given), Buffer.from(password!));
  if (!matches || (name !== "admin" && name !== "viewer")) return undefined;
  return { name, scope: { organizationId: ORGANIZATION } };
}

const db = createDb(url);
await ensureSchemaCompatible(db);

const dashboard = createDashboard({
  db,
  basePath: "/admin/jobs",
  scope: (request) => userOf(request)!.scope,
  // Every page asks for "read"; every button and change for its own action ("job.cancel", …).
  authorize: (request, action) => {
    const user = userOf(request);
    return user !== undefined && (action === "read" || user.name === "admin");
  },
  // Payloads are shown after this hook: mask what operators need not see.
  redact: (value) =>
    value !== null && typeof value === "object" && "card" in value ? { ...value, card: "••••" } : value,
});
const listener = toNodeListener(dashboard);

const server = createServer((req, res) => {
  if (!req.url?.startsWith("/admin/jobs")) return res.writeHead(404).end("not found");
  // Unknown visitors are asked to log in before the dashboard sees the request.
  const request = new Request("http://local/", { headers: { authorization: req.headers.authorization ?? "" } });
  if (userOf(request) === undefined) {
    return res.writeHead(401, { "www-authenticate": 'Basic realm="jobs"' }).end("log in");
  }
  listener(req, res);
});
server.listen(Number(process.env.PORT ?? 3000), "127.0.0.1", () => {
  const address = server.address() as { port: number };
  console.log(`dashboard at http://127.0.0.1:${address.port}/admin/jobs/ (users admin and viewer)`);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    server.closeAllConnections();
    server.close(() => void db.$runledger.close());
  });
}
