/**
 * `npm run bench:parked-flood`: a flood of parked streaming requests whose clients all leave at once (issue 30,
 * finding 8). BENCH_PARKED requests (default 1,000) park at a pool whose node cannot boot in time; once all are
 * parked every client disconnects. Reported: how long until the pool holds none of them and until every request
 * workflow has ended, and how the pool's own view answered meanwhile (a pool that answers 503 while it works off
 * abandoned requests is a pool a tenant's flood took down for others).
 */
import { percentile, startBenchStack, until } from './stack';

const PARKED = Number(process.env.BENCH_PARKED ?? 1000);

// Requests' last signals to workflows that ended may still be retrying when the stack's connection closes.
process.on('uncaughtException', (err) => {
  if (!String(err).includes('Channel has been shut down')) throw err;
});

async function main(): Promise<void> {
  // A boot far longer than the bench: nothing is ever placed, every request stays parked.
  const stack = await startBenchStack({ coldStartSeconds: 3600, tokensPerSecond: 100 });
  try {
    const pool = await stack.call('POST', '/v1/pools', {
      id: 'flood',
      model: 'flood-model',
      maxNodes: 1,
      slotsPerNode: 4,
      maxParkedRequests: PARKED,
      lanes: [{ provider: 'mock', market: 'on-demand', gpu: 'A10G', pricePerHour: 1 }],
    });
    if (!pool.config) throw new Error(`pool not created: ${JSON.stringify(pool)}`);
    const refused: string[] = [];
    let endedEarly = 0;
    const clients = Array.from({ length: PARKED }, () => new AbortController());
    const opened = clients.map((client) =>
      fetch(`${stack.base}/v1/chat/completions`, {
        method: 'POST',
        signal: client.signal,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.workspaceKey}` },
        body: JSON.stringify({ model: 'flood-model', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      }).then(
        async (res) => {
          // A parked stream answers 200 and its headers soon; anything else was refused (counted, and the bench fails).
          if (res.status !== 200) refused.push(`${res.status} ${await res.text()}`);
          // A stream that ends before the client leaves was given up by the server (an error event).
          else if (!(await res.text().catch(() => 'left')).endsWith('left')) endedEarly += 1;
        },
        () => undefined,
      ),
    );
    const parkStarted = Date.now();
    // Parked once the pool holds them all, or once its queue stops growing (a request the server gave up on
    // while parking is counted, not waited for).
    let last = -1;
    let steady = 0;
    const parked: number = await until(async () => {
      if (refused.length > 0) throw new Error(`${refused.length} requests refused, e.g. ${refused[0]}`);
      const view = await stack.call('GET', '/v1/pools/flood');
      steady = view.queued === last && view.queued > 0 ? steady + 1 : 0;
      last = view.queued;
      await new Promise((r) => setTimeout(r, 1000));
      return view.queued >= PARKED || steady >= 5 ? view.queued : undefined;
    }, 600_000);
    console.log(`${parked} requests parked in ${((Date.now() - parkStarted) / 1000).toFixed(1)} s; every client leaves now`);
    const left = Date.now();
    for (const client of clients) client.abort();
    await Promise.all(opened);

    // The pool's view, sampled while it works the withdrawals off: status and latency of each answer.
    const samples: Array<{ status: number; ms: number }> = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const started = Date.now();
        const res = await fetch(`${stack.base}/v1/pools/flood`, { headers: { authorization: `Bearer ${stack.workspaceKey}` } });
        await res.text();
        samples.push({ status: res.status, ms: Date.now() - started });
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const poolEmpty = await until(async () => {
      const res = await fetch(`${stack.base}/v1/pools/flood`, { headers: { authorization: `Bearer ${stack.workspaceKey}` } });
      const view = (await res.json()) as { queued?: number };
      return res.ok && view.queued === 0 ? Date.now() : undefined;
    }, 900_000);
    const running = () =>
      stack.temporal.client.workflow.count(`WorkflowType = 'requestWorkflow' AND ExecutionStatus = 'Running'`).then((c) => c.count);
    const allEnded = await until(async () => ((await running()) === 0 ? Date.now() : undefined), 900_000);
    sampling = false;
    await sampler;
    const failed = samples.filter((s) => s.status !== 200).length;
    const ms = samples.map((s) => s.ms);
    console.log(
      JSON.stringify(
        {
          sent: PARKED,
          parked,
          endedByTheServerWhileParked: endedEarly,
          poolEmptyAfterSeconds: (poolEmpty - left) / 1000,
          workflowsEndedAfterSeconds: (allEnded - left) / 1000,
          poolViewDuringDrain: { samples: samples.length, non200: failed, p50Ms: percentile(ms, 50), maxMs: Math.max(0, ...ms) },
        },
        null,
        2,
      ),
    );
  } finally {
    await stack.stop();
  }
  // The front door's last signals to ended workflows may still be retrying on a closed connection.
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
