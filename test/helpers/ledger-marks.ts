/** The node secret key of tests that write the ledger without a stack: its marks are checked by verify. */
import { nodeSecrets } from '../../src/secrets/node-secrets';

export const TEST_NODE_SECRETS = nodeSecrets(Buffer.alloc(32, 9));
