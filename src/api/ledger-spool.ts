/**
 * The fast path's ledger rows on local disk until PostgreSQL has them. Each row is appended to a segment file
 * (one write, in the same turn that ends the request) before it joins the in-memory batch, so a killed API
 * process loses nothing: the next process on this folder finds the dead owner's segments and writes their rows.
 * Rows are keyed (`ON CONFLICT DO NOTHING`), so writing a row twice is harmless; losing one is not.
 *
 * Files, per API process ("owner"): `<owner>.alive` (touched while it lives) and `<owner>.<n>.jsonl` (one row a
 * line). A segment is sealed when a batch starts and removed once every row it holds is in PostgreSQL.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { LedgerEvent } from '../db/ledger';

/** How often a live owner touches its `.alive` file, and after how long without a touch it counts as dead. */
const ALIVE_TOUCH_MS = 5000;
const DEAD_AFTER_MS = 30_000;
/** `<owner>.<n>.jsonl` (written here) or `<owner>.c<n>.jsonl` (claimed from a dead owner); owners have no dots. */
const SEGMENT = /^([^.]+)\.c?\d+\.jsonl$/;

/** Owners open in this process: alive whatever their `.alive` file says. */
const OPEN_HERE = new Set<string>();

/** What `.alive` says about its owner, so that a restart on the same host need not wait for DEAD_AFTER_MS. */
interface AliveRecord {
  host: string;
  pid: number;
}

/** Rows a dead owner left, claimed by this process: write them, then `release([file])`. */
export interface OrphanSegment {
  file: string;
  rows: LedgerEvent[];
  /** Lines that were not a whole row (the last one, when the process died mid-write). */
  torn: number;
}

export class LedgerSpool {
  readonly owner: string;
  private segment = 0;
  private claims = 0;
  private fd: number;
  private readonly aliveTimer: NodeJS.Timeout;

  constructor(
    readonly dir: string,
    private readonly log: Logger,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const host = os.hostname().replace(/[^A-Za-z0-9-]/g, '_');
    this.owner = `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
    fs.writeFileSync(this.aliveFile(this.owner), JSON.stringify({ host: os.hostname(), pid: process.pid } satisfies AliveRecord));
    this.fd = this.openSegment();
    OPEN_HERE.add(this.owner);
    this.aliveTimer = setInterval(() => {
      const now = new Date();
      fs.utimes(this.aliveFile(this.owner), now, now, () => undefined);
    }, ALIVE_TOUCH_MS);
    this.aliveTimer.unref();
  }

  /** Puts a row on disk (the kernel's page cache: it outlives the process, not the machine). */
  append(event: LedgerEvent): void {
    fs.writeSync(this.fd, `${JSON.stringify(event)}\n`);
  }

  /**
   * Ends the current segment and starts a new one; returns the ended segment. Every row in it was appended
   * before this call, so a batch that takes every pending row now covers it.
   */
  seal(): string {
    const sealed = this.segmentFile(this.segment);
    const next = fs.openSync(this.segmentFile(this.segment + 1), 'a', 0o600); // may throw: nothing changed yet
    // To the disk itself in the background (no request waits for it), so its rows survive the machine too.
    const fd = this.fd;
    fs.fdatasync(fd, () => fs.close(fd, () => undefined));
    this.segment += 1;
    this.fd = next;
    return sealed;
  }

  /** Forgets segments whose rows PostgreSQL now has (in the background: no request waits for it). */
  async release(files: string[]): Promise<void> {
    await Promise.all(files.map((file) => fs.promises.rm(file, { force: true })));
  }

  /**
   * Claims the segments of owners that are gone (their process ended on this host, or their `.alive` file has
   * not been touched for DEAD_AFTER_MS) by renaming them to this owner, so two processes never take the same one.
   */
  claimOrphans(): OrphanSegment[] {
    const claimed: OrphanSegment[] = [];
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return claimed;
    }
    const dead = new Map<string, boolean>();
    for (const name of names) {
      const owner = SEGMENT.exec(name)?.[1];
      if (!owner || owner === this.owner) continue;
      if (!dead.has(owner)) dead.set(owner, this.isDead(owner));
      if (!dead.get(owner)) continue;
      // Renamed into this owner's name: should this process die too, the next one claims it again.
      const file = path.join(this.dir, `${this.owner}.c${this.claims++}.jsonl`);
      try {
        fs.renameSync(path.join(this.dir, name), file);
      } catch {
        continue; // another process claimed it first
      }
      claimed.push({ file, ...readRows(file) });
    }
    for (const [owner, isDead] of dead) if (isDead) fs.rmSync(this.aliveFile(owner), { force: true });
    return claimed;
  }

  /** Stops; with nothing left unwritten, removes this owner's files (else the next process finds them). */
  close(unwritten: boolean): void {
    clearInterval(this.aliveTimer);
    OPEN_HERE.delete(this.owner);
    fs.closeSync(this.fd);
    if (unwritten) {
      this.log.error({ dir: this.dir, owner: this.owner }, 'ledger rows left in the spool for the next API process');
      return;
    }
    fs.rmSync(this.segmentFile(this.segment), { force: true });
    fs.rmSync(this.aliveFile(this.owner), { force: true });
  }

  private isDead(owner: string): boolean {
    if (OPEN_HERE.has(owner)) return false;
    const file = this.aliveFile(owner);
    let alive: AliveRecord | undefined;
    let touchedAt: number;
    try {
      touchedAt = fs.statSync(file).mtimeMs;
      alive = JSON.parse(fs.readFileSync(file, 'utf8')) as AliveRecord;
    } catch {
      return true;
    }
    if (alive && alive.host === os.hostname()) {
      // The same host: the process is gone, or its pid is ours now (a container restarted: pid 1 again) and
      // the owner is not one of this process's.
      if (alive.pid === process.pid || !processExists(alive.pid)) return true;
    }
    return Date.now() - touchedAt > DEAD_AFTER_MS;
  }

  private openSegment(): number {
    return fs.openSync(this.segmentFile(this.segment), 'a', 0o600);
  }

  private segmentFile(n: number): string {
    return path.join(this.dir, `${this.owner}.${n}.jsonl`);
  }

  private aliveFile(owner: string): string {
    return path.join(this.dir, `${owner}.alive`);
  }
}

function readRows(file: string): { rows: LedgerEvent[]; torn: number } {
  const rows: LedgerEvent[] = [];
  let torn = 0;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    try {
      rows.push(JSON.parse(line) as LedgerEvent);
    } catch {
      torn += 1;
    }
  }
  return { rows, torn };
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
