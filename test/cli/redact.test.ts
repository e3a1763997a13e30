import { describe, expect, it } from "vitest";
import { redactUrl } from "../../src/cli/command.ts";

describe("redactUrl", () => {
  it("hides the password of the userinfo", () => {
    expect(redactUrl("postgres://app:hunter2@db.internal:5432/jobs")).toBe("postgres://app:***@db.internal:5432/jobs");
    expect(redactUrl("postgresql://app@db/jobs")).toBe("postgresql://app@db/jobs");
  });

  it("hides password and sslpassword query parameters, in any case, keeping the others", () => {
    const printed = redactUrl(
      "postgres://app@db/jobs?sslmode=require&password=hunter2&SSLPassword=k3y&PASSWORD=again&application_name=web",
    );
    expect(printed).not.toMatch(/hunter2|k3y|again/);
    const query = new URL(printed).searchParams;
    expect(query.get("password")).toBe("***");
    expect(query.get("SSLPassword")).toBe("***");
    expect(query.get("PASSWORD")).toBe("***");
    expect(query.get("sslmode")).toBe("require");
    expect(query.get("application_name")).toBe("web");
  });

  it("hides both at once, and percent-encoded secrets too", () => {
    const printed = redactUrl("postgres://app:p%40ss@db/jobs?password=p%26ss%3D1");
    expect(printed).toBe("postgres://app:***@db/jobs?password=***");
  });

  it("prints nothing of text that is not a URL", () => {
    expect(redactUrl("host=db password=hunter2")).toBe("DATABASE_URL");
  });
});
