/** /v1/callback-secret: the secret a workspace's callbacks are signed with (read and rotate). */
import { Router } from 'express';
import { getCallbackSecret, rotateCallbackSecret } from '../../db/callbacks';
import { principalOf } from '../auth';
import type { ApiContext } from '../context';
import { ApiError } from '../errors';

/** How a receiver checks a callback, stated where the secret is handed out. */
const SCHEME = 'X-Zeropool-Signature: v1=hex(HMAC-SHA256(secret, "<X-Zeropool-Timestamp>.<raw body>"))';

/** Routes for the caller's workspace callback secret. */
export function callbackSecretRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get('/', async (_req, res) => {
    const workspaceId = principalOf(res).workspaceId;
    const secret = await getCallbackSecret(ctx.db, workspaceId);
    if (!secret) throw new ApiError(404, 'not_found', `workspace ${workspaceId} does not exist`);
    res.json({ workspace: workspaceId, secret, scheme: SCHEME });
  });
  router.post('/rotate', async (_req, res) => {
    const workspaceId = principalOf(res).workspaceId;
    const secret = await rotateCallbackSecret(ctx.db, workspaceId);
    res.json({ workspace: workspaceId, secret, scheme: SCHEME });
  });
  return router;
}
