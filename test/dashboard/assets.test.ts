import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { GENERATED, renderAssetsModule } from "../../scripts/dashboard-assets.ts";
import { ASSETS } from "../../src/dashboard/assets.generated.ts";
import { ASSET_NAMES, assetPath, assetResponse, gzippedAsset } from "../../src/dashboard/assets.ts";

const BUDGET_BYTES = 100 * 1024;

describe("client assets", () => {
  it("weigh at most 100 KB gzipped in total, as served", () => {
    const sizes = Object.fromEntries(ASSET_NAMES.map((name) => [name, gzippedAsset(name).byteLength]));
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    console.log(`dashboard assets, gzipped bytes: ${JSON.stringify(sizes)}, total ${total}`);
    expect(total).toBeLessThanOrEqual(BUDGET_BYTES);
    for (const name of ASSET_NAMES) expect(gunzipSync(gzippedAsset(name)).toString("utf8")).toBe(ASSETS[name].body);
  });

  it("are the current client files and htmx 2 builds (run npm run dashboard:assets after changing them)", () => {
    expect(readFileSync(GENERATED, "utf8")).toBe(renderAssetsModule());
    expect(ASSETS["htmx.min.js"].body).toMatch(/version:"2\.0\.\d+"/);
  });

  it("are served with their type, compressed when asked, cached forever under their hash", async () => {
    for (const name of ASSET_NAMES) {
      const url = `http://dash.test/x${assetPath(name)}`;
      const plain = assetResponse(name, new Request(url))!;
      expect(plain.headers.get("content-type")).toBe(ASSETS[name].type);
      expect(plain.headers.get("cache-control")).toContain("immutable");
      expect(await plain.text()).toBe(ASSETS[name].body);
      const gz = assetResponse(name, new Request(url, { headers: { "accept-encoding": "gzip, br" } }))!;
      expect(gz.headers.get("content-encoding")).toBe("gzip");
      const etag = plain.headers.get("etag")!;
      expect(assetResponse(name, new Request(url, { headers: { "if-none-match": etag } }))!.status).toBe(304);
    }
    const stale = assetResponse("htmx.min.js", new Request("http://dash.test/assets/htmx.min.js?v=old"))!;
    expect(stale.headers.get("cache-control")).toBe("no-cache");
    expect(assetResponse("../package.json", new Request("http://dash.test/"))).toBeUndefined();
  });
});
