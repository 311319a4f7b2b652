/**
 * Appending to a file with O_DIRECT (the jsonl sink's `directIo` option): the bytes go from one staging
 * buffer to the device without passing through the page cache. A buffered append of JSON lines at
 * hundreds of MB/s makes the kernel allocate, copy and later write back every page, and fills the page
 * cache with data nobody reads again; on virtual machines whose free memory goes back to the host (virtio
 * balloon free page reporting) each new page is also a host fault: measured here at ~2.4 CPU-seconds per GB
 * written, against ~0.1–0.2 s with O_DIRECT (BENCHMARKS.md).
 *
 * O_DIRECT needs the buffer address, the file offset and the length aligned to the device's blocks, and
 * JavaScript cannot ask for an aligned ArrayBuffer, so:
 * - one staging buffer is allocated for the file's lifetime and the offset inside it that is aligned is
 *   found by a probe write to a scratch file in the same directory (which also tells whether the filesystem
 *   takes O_DIRECT at all: tmpfs and some network filesystems do not; the caller falls back to buffered);
 * - whole blocks are written with O_DIRECT at the block-aligned end of what is already on disk; the last,
 *   partial block is written through a second, buffered descriptor so the file is complete after every
 *   append, and rewritten (with what follows) by the next direct write.
 * This appender assumes it is the file's only writer while open. Before each append it checks the size: a
 * file truncated or appended by someone else (logrotate's copytruncate) is picked up from its new end.
 */
import { closeSync, constants, openSync, unlinkSync, writeSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { dirname, join } from "node:path";
import { JSONL_FILE_MODE } from "../core/fs.ts";

/** Alignment of file offsets, lengths and the buffer address (a page: a multiple of any sector size). */
const BLOCK = 4096;
/** Staging capacity: a batch larger than this goes out in several direct writes. */
const STAGE = 8 * 1024 * 1024;

/**
 * The offset in `buf` at which O_DIRECT writes work on the filesystem holding `dir`, or null when it does
 * not take O_DIRECT (or no offset works). Throws when the directory cannot be written at all.
 */
function probeAlignment(dir: string, buf: Uint8Array): number | null {
  const path = join(dir, `.clarion-direct-probe-${process.pid}-${Math.random().toString(36).slice(2)}`);
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT,
      0o600,
    );
  } catch (err) {
    // EINVAL: the filesystem refuses O_DIRECT; anything else (permissions, no directory) is the caller's error
    if ((err as NodeJS.ErrnoException).code === "EINVAL") return null;
    throw err;
  }
  try {
    for (let at = 0; at < BLOCK; at += 16) {
      try {
        if (writeSync(fd, buf, at, 2 * BLOCK, 0) === 2 * BLOCK) return at;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EINVAL") return null;
      }
    }
    return null;
  } finally {
    closeSync(fd);
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
}

export class DirectAppender {
  readonly path: string;
  #direct: FileHandle;
  #buffered: FileHandle;
  #stage: Uint8Array;
  /** Aligned start of the staging area inside #stage. */
  #at: number;
  /** File offset (block-aligned) of the staging area's first byte. */
  #filePos = 0;
  /** Bytes in the staging area: the file's partial last block, then what is being appended. */
  #staged = 0;

  private constructor(path: string, direct: FileHandle, buffered: FileHandle, stage: Uint8Array, at: number) {
    this.path = path;
    this.#direct = direct;
    this.#buffered = buffered;
    this.#stage = stage;
    this.#at = at;
  }

  /**
   * Opens (creating) `path` for appending with O_DIRECT; null when its filesystem does not take O_DIRECT.
   * Rejects on other errors (permissions, missing directory), like a buffered open would.
   */
  static async open(path: string): Promise<DirectAppender | null> {
    const stage = new Uint8Array(STAGE + 2 * BLOCK);
    const at = probeAlignment(dirname(path), stage);
    if (at === null) return null;
    const direct = await open(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_DIRECT,
      JSONL_FILE_MODE,
    );
    let buffered: FileHandle;
    try {
      buffered = await open(path, constants.O_RDWR);
    } catch (err) {
      await direct.close();
      throw err;
    }
    const a = new DirectAppender(path, direct, buffered, stage, at);
    try {
      await a.#loadTail();
    } catch (err) {
      await a.close();
      throw err;
    }
    return a;
  }

  /** Bytes in the file as this appender knows it. */
  get size(): number {
    return this.#filePos + this.#staged;
  }

  /** Reads the file's partial last block into the staging area, from the file's current size. */
  async #loadTail(): Promise<void> {
    const size = (await this.#buffered.stat()).size;
    const tail = size % BLOCK;
    this.#filePos = size - tail;
    this.#staged = 0;
    while (this.#staged < tail) {
      const { bytesRead } = await this.#buffered.read(
        this.#stage,
        this.#at + this.#staged,
        tail - this.#staged,
        this.#filePos + this.#staged,
      );
      if (bytesRead === 0) break;
      this.#staged += bytesRead;
    }
  }

  /** Appends `data`; resolves once it is in the file (on the device, but for the last partial block). */
  async append(data: Uint8Array): Promise<void> {
    if ((await this.#buffered.stat()).size !== this.size) await this.#loadTail();
    const stage = this.#stage;
    const at = this.#at;
    let off = 0;
    while (off < data.length) {
      const n = Math.min(data.length - off, STAGE - this.#staged);
      stage.set(data.subarray(off, off + n), at + this.#staged);
      this.#staged += n;
      off += n;
      const whole = this.#staged - (this.#staged % BLOCK);
      if (whole > 0 && (this.#staged === STAGE || off === data.length)) {
        await writeFully(this.#direct, stage, at, whole, this.#filePos);
        this.#filePos += whole;
        stage.copyWithin(at, at + whole, at + this.#staged);
        this.#staged -= whole;
      }
    }
    if (this.#staged > 0) await writeFully(this.#buffered, stage, at, this.#staged, this.#filePos);
  }

  datasync(): Promise<void> {
    return this.#direct.datasync();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#direct.close(), this.#buffered.close()]);
  }
}

async function writeFully(
  fh: FileHandle,
  buf: Uint8Array,
  offset: number,
  length: number,
  position: number,
): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesWritten } = await fh.write(buf, offset + done, length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`short write to file at ${position + done}`);
    done += bytesWritten;
  }
}
