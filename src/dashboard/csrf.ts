import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/*
 * CSRF protection without server-side sessions (signed double submit): the browser holds a
 * random token signed with the dashboard's secret in an HttpOnly, SameSite=Strict cookie scoped
 * to the dashboard's path; every page carries the same token, and every change must send it back
 * in a form field or header. Another site can make the browser send the cookie, but cannot read
 * the token to send it back; a token it planted itself fails the signature.
 */

export const CSRF_COOKIE = "runledger_csrf";
export const CSRF_FIELD = "_csrf";
export const CSRF_HEADER = "x-csrf-token";

export interface Csrf {
  /** The request's valid token, or a new one with the `Set-Cookie` value that installs it. */
  tokenFor(request: Request): { token: string; setCookie?: string };
  /** Whether a change carries the token of its own cookie and does not come from another site. */
  verify(request: Request, submitted: string | null): boolean;
}

function cookie(request: Request, name: string): string | undefined {
  for (const part of (request.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function createCsrf(secret: string | undefined, cookiePath: string): Csrf {
  const key = secret ?? randomBytes(32).toString("base64url");
  const sign = (nonce: string) => createHmac("sha256", key).update(nonce).digest("base64url");
  const valid = (token: string | undefined): token is string => {
    if (token === undefined) return false;
    const dot = token.indexOf(".");
    return dot > 0 && same(token.slice(dot + 1), sign(token.slice(0, dot)));
  };
  return {
    tokenFor(request) {
      const current = cookie(request, CSRF_COOKIE);
      if (valid(current)) return { token: current };
      const nonce = randomBytes(18).toString("base64url");
      const token = `${nonce}.${sign(nonce)}`;
      const secure = new URL(request.url).protocol === "https:" ? "; Secure" : "";
      return {
        token,
        setCookie: `${CSRF_COOKIE}=${token}; Path=${cookiePath || "/"}; HttpOnly; SameSite=Strict${secure}`,
      };
    },
    verify(request, submitted) {
      // Browsers say where a request comes from; a cross-site one is refused whatever it carries.
      if (request.headers.get("sec-fetch-site") === "cross-site") return false;
      const current = cookie(request, CSRF_COOKIE);
      return valid(current) && submitted !== null && same(submitted, current);
    },
  };
}
