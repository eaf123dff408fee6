/** Rules of a job's life outside the pool: retry backoff and which progress snapshot to resume from. Pure. */
import type { ProgressSnapshot } from './types';

/** First retry waits this long; each further failure doubles it, up to RETRY_BACKOFF_MAX_MS. */
export const RETRY_BACKOFF_BASE_MS = 2_000;
export const RETRY_BACKOFF_MAX_MS = 60_000;

/** Backoff before the attempt that follows the `failures`-th failed one: 2 s, 4 s, 8 s … capped at 60 s. */
export function retryBackoffMs(failures: number): number {
  return Math.min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_BASE_MS * 2 ** Math.max(0, failures - 1));
}

/** Longest completion text kept in a snapshot (it travels in workflow history). */
export const SNAPSHOT_TEXT_LIMIT = 256 * 1024;

/**
 * The snapshot to keep: the one that got further. A snapshot without the text that produced its tokens
 * cannot be resumed from, so a node report of counts only never replaces one that has the text.
 */
export function laterSnapshot(a: ProgressSnapshot | undefined, b: ProgressSnapshot | undefined): ProgressSnapshot | undefined {
  if (!a) return b;
  if (!b) return a;
  const resumable = (s: ProgressSnapshot) => s.text.length > 0 || s.completionTokens === 0;
  if (resumable(a) !== resumable(b)) return resumable(a) ? a : b;
  if (a.completionTokens !== b.completionTokens) return a.completionTokens > b.completionTokens ? a : b;
  return a.at >= b.at ? a : b;
}

/**
 * The failure type of an outcome write that cannot succeed however often it is retried: what it holds is not
 * storable (PostgreSQL's data exceptions, class 22: a lone surrogate or NUL in JSON text, a value out of range).
 */
export const OUTCOME_NOT_STORABLE = 'OutcomeNotStorable';

/** True for a PostgreSQL error caused by the data written (SQLSTATE class 22), not by the database's state. */
export function isDataException(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('22');
}
