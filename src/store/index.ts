export * from "./db.ts";
export * from "./errors.ts";
export * from "./migrate.ts";
export { queryRows } from "./query.ts";
export * as schema from "./schema/index.ts";
