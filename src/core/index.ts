export * from "./cron.ts";
export * from "./errors.ts";
export * from "./handler.ts";
export * from "./ids.ts";
export * from "./result.ts";
export * from "./retry.ts";
export * from "./statuses.ts";
