/**
 * Directory and private-file creation for every path the collector writes under (data directory, SQLite
 * database, JSON-lines files, spools, dead letters, template state).
 *
 * Files under the data directory hold flow data and agent payloads (DESIGN §2): they are created 0600 and
 * their directories 0700 whatever the umask (the mode is set again with chmod after creation, since the
 * umask only narrows the one given to open/mkdir). Every such file is opened through `openPrivateSync`,
 * `openPrivate` or made by `createPrivateFile`, and every such directory by `makeDirs(path, PRIVATE_DIR_MODE)`.
 *
 * `fs.mkdir(path, { recursive: true })` never returns for a path under a filesystem that answers ENOENT to
 * mkdir of an entry whose parent exists, such as /proc (seen on Node 20 and 24: it retries the parent,
 * gets EEXIST, and tries the child again forever), so a misconfigured path would hang startup instead of
 * stopping it with a message. This walks up to the nearest existing ancestor and creates the missing
 * components one by one with plain mkdir, so every failure surfaces as the error of the component that
 * could not be made.
 */
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, statSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname, resolve } from "node:path";

/** Files under the data directory: owner read/write only. */
export const PRIVATE_FILE_MODE = 0o600;
/**
 * JSON-lines output files (any path): flow data, so not world-readable, but readable by the owner's group so
 * that a log shipper (filebeat, vector) run in that group can follow them. The umask can narrow it further;
 * an existing file keeps its mode.
 */
export const JSONL_FILE_MODE = 0o640;
/** Directories under the data directory: owner only. */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * Creates `path` and its missing parents (like `mkdir -p`); throws the first error (ENOENT, EACCES, ...).
 * With `mode`, the directories it creates get exactly that mode (existing ones are left as they are).
 */
export function makeDirs(path: string, mode?: number): void {
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
      mkdirSync(missing[i]!, mode === undefined ? undefined : { mode });
      if (mode !== undefined) chmodSync(missing[i]!, mode);
    } catch (err) {
      // another process (or a concurrent call) made it in between: fine when it is a directory
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || !statSync(missing[i]!).isDirectory()) throw err;
    }
  }
}

/** `openSync` for a file under the data directory: created (or kept) with mode 0600 exactly. */
export function openPrivateSync(path: string, flags: string | number): number {
  const fd = openSync(path, flags, PRIVATE_FILE_MODE);
  try {
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** `fs.promises.open` for a file under the data directory: created (or kept) with mode 0600 exactly. */
export async function openPrivate(path: string, flags: string | number): Promise<FileHandle> {
  const fh = await open(path, flags, PRIVATE_FILE_MODE);
  try {
    await fh.chmod(PRIVATE_FILE_MODE);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return fh;
}

/**
 * Creates `path` empty with mode 0600 when it does not exist (a database a library opens next, whose
 * companion files — SQLite's -wal and -shm — take the mode of the main file). An existing file is left as is.
 */
export function createPrivateFile(path: string): void {
  try {
    closeSync(openPrivateSync(path, "wx"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
}
