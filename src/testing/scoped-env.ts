/**
 * Set environment variables for a block and put the old values back afterwards.
 * `undefined` unsets a variable. Works with `using`:
 *
 *     using _env = new ScopedEnv({ JOBS_POLL_INTERVAL_MS: "5" });
 */
export class ScopedEnv {
  readonly #saved = new Map<string, string | undefined>();
  readonly #env: NodeJS.ProcessEnv;

  constructor(values: Record<string, string | undefined>, env: NodeJS.ProcessEnv = process.env) {
    this.#env = env;
    for (const [key, value] of Object.entries(values)) {
      if (!this.#saved.has(key)) this.#saved.set(key, env[key]);
      if (value === undefined) delete env[key];
      else env[key] = value;
    }
  }

  /** Restore every variable this scope changed. Calling it twice is harmless. */
  restore(): void {
    for (const [key, value] of this.#saved) {
      if (value === undefined) delete this.#env[key];
      else this.#env[key] = value;
    }
    this.#saved.clear();
  }

  [Symbol.dispose](): void {
    this.restore();
  }
}
