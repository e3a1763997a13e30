export * from "./ephemeral.ts";
export * from "./factories.ts";
export * from "./scoped-env.ts";
export { DEFAULT_DATABASE_URL, resolveServerUrl } from "./server.ts";
