export * from "./errors.ts";
export * from "./statuses.ts";
