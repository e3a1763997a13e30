export * from "./catalog.ts";
export * from "./config.ts";
export * from "./events.ts";
export type { RuntimeLoopExit } from "./loop.ts";
export * from "./reaper.ts";
export * from "./registry.ts";
export * from "./scheduler.ts";
export * from "./supervisor.ts";
export * from "./worker.ts";
