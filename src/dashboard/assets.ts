import { gzipSync } from "node:zlib";
import { ASSETS } from "./assets.generated.ts";

export type AssetName = keyof typeof ASSETS;

/** An asset's URL below the mount path; the hash changes with its content, so it may be cached forever. */
export function assetPath(name: AssetName): string {
  return `/assets/${name}?v=${ASSETS[name].hash}`;
}

const gzipped = new Map<AssetName, Uint8Array>();

/** Every packaged asset, gzipped as it is sent: what the size budget measures. */
export function gzippedAsset(name: AssetName): Uint8Array {
  let body = gzipped.get(name);
  if (body === undefined) {
    body = new Uint8Array(gzipSync(ASSETS[name].body, { level: 9 }));
    gzipped.set(name, body);
  }
  return body;
}

export const ASSET_NAMES = Object.keys(ASSETS) as AssetName[];

/** The asset response for `name`, or undefined when there is no such asset. */
export function assetResponse(name: string, request: Request): Response | undefined {
  if (!Object.hasOwn(ASSETS, name)) return undefined;
  const asset = ASSETS[name as AssetName];
  const etag = `"${asset.hash}"`;
  const versioned = new URL(request.url).searchParams.get("v") === asset.hash;
  const headers = new Headers({
    "content-type": asset.type,
    etag,
    "cache-control": versioned ? "public, max-age=31536000, immutable" : "no-cache",
    "x-content-type-options": "nosniff",
    vary: "accept-encoding",
  });
  if (request.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
  if (/\bgzip\b/.test(request.headers.get("accept-encoding") ?? "")) {
    headers.set("content-encoding", "gzip");
    return new Response(request.method === "HEAD" ? null : gzippedAsset(name as AssetName), { headers });
  }
  return new Response(request.method === "HEAD" ? null : asset.body, { headers });
}
