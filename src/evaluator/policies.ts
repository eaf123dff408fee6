/**
 * The keep-alive policies the evaluator compares. Each is a pool configuration the pool machine runs as it
 * would live, except the oracle, whose driver also knows the future (see simulate.ts).
 */

export interface Policy {
  name: string;
  /** What the row in the table means. */
  describe: string;
  idleTimeoutSeconds: number;
  minNodes: number;
  adaptive: boolean;
  /** The lane states a stopped price (SimulationKnobs.stopPricePerHour): idle nodes may be stopped and woken. */
  ladder?: boolean;
  /** Not a pool configuration: the per-node bound of oracle.ts. */
  oracle: boolean;
}

/** Longest idle timeout a pool accepts: "never" for the policies that keep their nodes. */
export const NEVER_SECONDS = 7 * 24 * 3600;

const fixed = (seconds: number): Policy => ({
  name: `fixed-${seconds}s`,
  describe: `nodes stay ${seconds} s after the pool goes idle (idleTimeoutSeconds: ${seconds})`,
  idleTimeoutSeconds: seconds,
  minNodes: 0,
  adaptive: false,
  oracle: false,
});

/** The fixed timeout the adaptive policy must match in cold starts (its idleTimeoutSeconds). */
export const ADAPTIVE_REFERENCE_SECONDS = 600;

export const POLICIES: Policy[] = [
  {
    name: 'always-on',
    describe: 'one node up from the start, and every node kept to the end (minNodes: 1, no idle timeout)',
    idleTimeoutSeconds: NEVER_SECONDS,
    minNodes: 1,
    adaptive: false,
    oracle: false,
  },
  fixed(10),
  fixed(60),
  fixed(300),
  fixed(600),
  {
    name: 'adaptive',
    describe: `keepAlive.mode adaptive with idleTimeoutSeconds ${ADAPTIVE_REFERENCE_SECONDS} (its cold-start budget)`,
    idleTimeoutSeconds: ADAPTIVE_REFERENCE_SECONDS,
    minNodes: 0,
    adaptive: true,
    oracle: false,
  },
  {
    name: 'adaptive-ladder',
    describe: `adaptive, and the lane states a stopped price: the pool machine stops idle nodes and wakes them (the warm-state ladder, as a live pool runs it)`,
    idleTimeoutSeconds: ADAPTIVE_REFERENCE_SECONDS,
    minNodes: 0,
    adaptive: true,
    ladder: true,
    oracle: false,
  },
  {
    name: 'oracle',
    describe:
      'per node, knows every arrival: keeps a node over a gap shorter than the cold start, else it leaves and is back just in time (oracle.ts)',
    idleTimeoutSeconds: NEVER_SECONDS,
    minNodes: 0,
    adaptive: false,
    oracle: true,
  },
];

/** Policies by name, or all of them; unknown names are an error. */
export function selectPolicies(names: string[] | undefined): Policy[] {
  if (!names || names.length === 0) return POLICIES;
  return names.map((name) => {
    const policy = POLICIES.find((p) => p.name === name);
    if (!policy) throw new Error(`unknown policy ${name}; known: ${POLICIES.map((p) => p.name).join(', ')}`);
    return policy;
  });
}
