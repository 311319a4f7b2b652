#!/usr/bin/env node
// Entry point. From a checkout, run the TypeScript sources directly (Node 24 strips types); from the
// published package (which ships dist/ and no src/), run the compiled JavaScript.
import { existsSync } from "node:fs";

const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  process.stderr.write(
    `clarion-collector needs Node.js 24 or newer (this is ${process.version}).\n` +
      "From a checkout, run it through npm (npm start, npx clarion-collector) so the pinned Node 24 is used.\n",
  );
  process.exit(2);
}
const src = new URL("../src/cli.ts", import.meta.url);
await import(existsSync(src) ? src.href : new URL("../dist/cli.js", import.meta.url).href);
