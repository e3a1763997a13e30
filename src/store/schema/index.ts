export * from "./base.ts";
export * from "./flow.ts";
export * from "./jobs.ts";
export * from "./schedules.ts";
export * from "./workflows.ts";
