/** Callback secrets of workspaces and the delivery state of each job's callback. */
import { storableText } from '../domain/text';
import { randomBytes } from 'node:crypto';
import type { Pool } from 'pg';
import type { CallbackState } from '../domain/callback-target';

export type { CallbackState } from '../domain/callback-target';

type Db = Pick<Pool, 'query'>;

/** The workspace's callback signing secret. */
export async function getCallbackSecret(db: Db, workspaceId: string): Promise<string | undefined> {
  const result = await db.query('SELECT callback_secret FROM workspaces WHERE id = $1', [workspaceId]);
  return result.rows[0]?.callback_secret;
}

/** Replaces the workspace's callback secret; returns the new one. Callbacks signed from now on use it. */
export async function rotateCallbackSecret(db: Db, workspaceId: string): Promise<string> {
  const secret = randomBytes(32).toString('hex');
  await db.query('UPDATE workspaces SET callback_secret = $2 WHERE id = $1', [workspaceId, secret]);
  return secret;
}

/** The latest delivery state of a job's callback, if it has one. */
export async function getCallbackState(db: Db, jobId: string): Promise<CallbackState | undefined> {
  const result = await db.query('SELECT callback FROM jobs WHERE id = $1', [jobId]);
  return result.rows[0]?.callback ?? undefined;
}

/** Records the latest delivery state of a job's callback. */
export async function setCallbackState(db: Db, jobId: string, state: CallbackState): Promise<void> {
  // A URL accepted before the API refused unstorable text must not make this write fail for ever.
  const storable = { ...state, url: storableText(state.url), ...(state.lastError ? { lastError: storableText(state.lastError) } : {}) };
  await db.query('UPDATE jobs SET callback = $2 WHERE id = $1', [jobId, JSON.stringify(storable)]);
}
