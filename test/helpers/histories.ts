/** Recorded workflow histories for the replay test, stored as protobuf-encoded History messages. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

/** Folder of recorded histories. */
export const HISTORIES_DIR = path.join(__dirname, '..', 'histories');

/** Saves a workflow run's history when RECORD_HISTORIES=1 (run the integration tests that way to refresh them). */
export async function recordHistory(client: Client, workflowId: string, name: string, runId?: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  mkdirSync(HISTORIES_DIR, { recursive: true });
  writeFileSync(path.join(HISTORIES_DIR, `${name}.binpb`), temporal.api.history.v1.History.encode(history).finish());
}
