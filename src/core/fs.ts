/**
 * Directory creation for every path the collector writes under (data directory, SQLite database, JSON-lines
 * files, spools, dead letters).
 *
 * `fs.mkdir(path, { recursive: true })` never returns for a path under a filesystem that answers ENOENT to
 * mkdir of an entry whose parent exists, such as /proc (seen on Node 20 and 24: it retries the parent,
 * gets EEXIST, and tries the child again forever), so a misconfigured path would hang startup instead of
 * stopping it with a message. This walks up to the nearest existing ancestor and creates the missing
 * components one by one with plain mkdir, so every failure surfaces as the error of the component that
 * could not be made.
 */
import { mkdirSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";

/** Creates `path` and its missing parents (like `mkdir -p`); throws the first error (ENOENT, EACCES, ...). */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  let dir = resolve(path);
  for (;;) {
    try {
      if (!statSync(dir).isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${dir}'`), {
          code: "ENOTDIR",
          path: dir,
        });
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    missing.push(dir);
    const parent = dirname(dir);
    if (parent === dir) break; // the root itself is missing: mkdir below reports why
    dir = parent;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      mkdirSync(missing[i]!);
    } catch (err) {
      // another process (or a concurrent call) made it in between: fine when it is a directory
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !statSync(missing[i]!).isDirectory()) throw err;
    }
  }
}
