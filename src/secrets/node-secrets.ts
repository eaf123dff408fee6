/**
 * Each node's bearer secret: handed to the node's model server when it is provisioned (e.g. vLLM
 * `--api-key`), sent by zeropool on every inference and health call, so a public IP or proxy URL is not an
 * open model server. Derived, not stored: HMAC-SHA256(key, node id), so every worker that shares the key
 * computes the same secret and no secret is written to Temporal's history or the database.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The header value a node accepts, and the token a job's node reports progress with. */
export interface NodeSecrets {
  of(nodeId: string): string;
  /**
   * A job's progress token (POST /v1/jobs/:id/progress): derived the same way, so the API (which stores only
   * its hash) and the worker's inference activity (which hands it to the node) agree without it ever being in
   * a workflow's input or history. The `progress:` prefix keeps it apart from every node id's secret.
   */
  progressToken(jobId: string): string;
  /** The unguessable part of a workspace's notification topic (src/domain/notify-topic.ts). */
  topicSuffix(workspaceId: string): string;
  /** A ledger row's writer mark (src/db/ledger-marks.ts): HMAC under a key of the row's workspace. */
  ledgerMark(workspaceId: string, content: string): string;
}

/** Node secrets derived from one key. */
export function nodeSecrets(key: Buffer): NodeSecrets {
  if (key.length < 32) throw new Error('the node secret key must be at least 32 bytes');
  const derive = (what: string) => createHmac('sha256', key).update(what).digest('base64url');
  // Each workspace's ledger key is derived once: a mark is then one HMAC per row (the front door's hot path).
  const ledgerKeys = new Map<string, Buffer>();
  const ledgerKey = (workspaceId: string) => {
    let derived = ledgerKeys.get(workspaceId);
    if (!derived) {
      derived = createHmac('sha256', key).update(`ledger:${workspaceId}`).digest();
      ledgerKeys.set(workspaceId, derived);
    }
    return derived;
  };
  // A node's secret is asked on every warm request to it (the front door's hot path): derived once per node.
  const nodeTokens = new Map<string, string>();
  return {
    of: (nodeId) => {
      let token = nodeTokens.get(nodeId);
      if (token === undefined) {
        token = `zpn_${derive(nodeId)}`;
        if (nodeTokens.size >= 10_000) nodeTokens.clear();
        nodeTokens.set(nodeId, token);
      }
      return token;
    },
    progressToken: (jobId) => `zpj_${derive(`progress:${jobId}`)}`,
    topicSuffix: (workspaceId) => derive(`ntfy:${workspaceId}`),
    ledgerMark: (workspaceId, content) => createHmac('sha256', ledgerKey(workspaceId)).update(content).digest('base64url'),
  };
}

/** Where a generated key is kept when ZEROPOOL_NODE_SECRET_KEY is not set. */
export const NODE_SECRET_KEY_FILE = 'node-secret.key';

/**
 * The key: ZEROPOOL_NODE_SECRET_KEY when set (every worker on every host must share it), else one generated
 * once into the data folder (mode 0600), which serves every worker that shares that folder.
 */
export function loadNodeSecretKey(configured: string | undefined, dataDir: string): Buffer {
  if (configured) return Buffer.from(configured, 'utf8');
  const file = path.join(dataDir, NODE_SECRET_KEY_FILE);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    // `wx`: two workers starting together cannot overwrite each other's key.
    try {
      writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return Buffer.from(readFileSync(file, 'utf8').trim(), 'utf8');
}

/** Headers for a call to a node: its bearer secret when secrets are on and the node is known. */
export function nodeAuthHeaders(secrets: NodeSecrets | undefined, nodeId: string | undefined): Record<string, string> {
  return secrets && nodeId ? { authorization: `Bearer ${secrets.of(nodeId)}` } : {};
}

/** A provider's boot script for one node: `{nodeToken}` replaced by the node's bearer secret (empty without secrets). */
export function withNodeToken(script: string, secrets: NodeSecrets | undefined, nodeId: string): string {
  return script.replaceAll('{nodeToken}', secrets?.of(nodeId) ?? '');
}
