/**
 * Atomic file writes: content goes to a temporary file beside the target, is fsynced, and
 * only then renamed over it, so a crash leaves either the old file or the new one, never a
 * partial one.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";

import { GrowlmError } from "../errors.js";

/** A name for a temporary file beside `path`, unique to this process and call. */
export function temporaryPath(path: string): string {
  return `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
}

/**
 * Creates a temporary file beside `file`, lets `write` fill it through its descriptor, then
 * fsyncs and closes it and returns its path for the caller to rename. On any failure the
 * temporary file is removed and a GrowlmError (naming `file` unless `write` threw one) thrown.
 */
export function stageWith(op: string, file: string, write: (fd: number) => void): string {
  const tmp = temporaryPath(file);
  let fd: number | null = null;
  try {
    fd = fs.openSync(tmp, "wx");
    write(fd);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = null;
    return tmp;
  } catch (err) {
    if (fd !== null) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    if (err instanceof GrowlmError) throw err;
    throw new GrowlmError(op, `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** Writes `content` to a temporary file beside `file` (see stageWith); returns its path. */
export function stageFile(op: string, file: string, content: string | Uint8Array): string {
  return stageWith(op, file, (fd) => fs.writeFileSync(fd, content));
}

/** Writes `content` to `file` atomically (temporary file, fsync, rename). */
export function writeFileAtomic(op: string, file: string, content: string | Uint8Array): void {
  const tmp = stageFile(op, file, content);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new GrowlmError(op, `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}
