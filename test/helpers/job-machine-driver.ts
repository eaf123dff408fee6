/** The job machine driven by hand for unit tests: events in, commands out, the clock moved by the test. */
import assert from 'node:assert/strict';
import { newJobMachine, newRequestMachine, stepJob } from '../../src/domain/job-machine';
import type { JobMachineCommand, JobMachineEvent, JobMachineState } from '../../src/domain/job-protocol';
import type { JobInput, PlacementGrant } from '../../src/domain/types';
import { asPoolKey } from '../../src/ids';

export type JobOf<T extends JobMachineCommand['type']> = Extract<JobMachineCommand, { type: T }>;

export const START = 1_000_000;

export const jobInput = (overrides: Partial<JobInput> = {}): JobInput => ({
  jobId: 'j1',
  poolId: asPoolKey('p'),
  model: 'm',
  payload: { prompt: 'hi' },
  ttlSeconds: 60,
  maxAttempts: 3,
  submittedAt: START - 100,
  indexed: true,
  priority: 2,
  ...overrides,
});

export const grant = (attempt = 1, nodeId = 'n1', coldStartMs = 0): PlacementGrant => ({
  attempt,
  nodeId,
  nodeUrl: `http://${nodeId}`,
  slot: 0,
  coldStartMs,
});

/** Steps the machine and checks that no step changes the state it was given. */
export class JobDriver {
  now = START;
  last: JobMachineCommand[] = [];
  all: JobMachineCommand[] = [];
  wakeAt: number | undefined;

  constructor(public state: JobMachineState) {}

  static job(overrides: Partial<JobInput> = {}, arrivalSignalled = false): JobDriver {
    const d = new JobDriver(newJobMachine(jobInput(overrides), START));
    d.send({ type: 'started', arrivalSignalled });
    return d;
  }

  static request(parkTimeoutSeconds = 30): JobDriver {
    const d = new JobDriver(
      newRequestMachine(
        {
          requestId: 'r1',
          poolId: asPoolKey('p'),
          model: 'm',
          route: 'chat.completions',
          priority: 3,
          submittedAt: START - 5,
          parkTimeoutSeconds,
          indexed: true,
        },
        START,
      ),
    );
    d.send({ type: 'started', arrivalSignalled: false });
    return d;
  }

  send(event: JobMachineEvent): JobMachineCommand[] {
    const before = JSON.stringify(this.state);
    const out = stepJob(this.state, event, this.now);
    assert.equal(JSON.stringify(this.state), before, `stepJob mutated its input on ${event.type}`);
    this.state = out.state;
    this.wakeAt = out.wakeAt;
    this.last = out.commands;
    this.all.push(...out.commands);
    return out.commands;
  }

  /** Moves the clock to the wake-up time the machine asked for and fires the timer. */
  fire(): JobMachineCommand[] {
    assert.ok(this.wakeAt !== undefined, 'the machine asked for a wake-up');
    this.now = this.wakeAt;
    return this.send({ type: 'timerFired' });
  }

  find<T extends JobMachineCommand['type']>(type: T, commands = this.last): JobOf<T> | undefined {
    return commands.find((c): c is JobOf<T> => c.type === type);
  }

  findAll<T extends JobMachineCommand['type']>(type: T, commands = this.last): JobOf<T>[] {
    return commands.filter((c): c is JobOf<T> => c.type === type);
  }

  /** What the job told its pool in the last step, in order (`arrived:2:front`, `finished:1`, `withdrawn`). */
  told(commands = this.last): string[] {
    return this.findAll('tellPool', commands).map(({ message: m }) =>
      m.kind === 'arrived'
        ? `arrived:${m.arrival.attempt}${m.arrival.front ? ':front' : ''}`
        : m.kind === 'finished'
          ? `finished:${m.attempt}`
          : 'withdrawn',
    );
  }

  /** Ends the outcome's write as recorded; returns the commands that followed. */
  recorded(): JobMachineCommand[] {
    return this.send({ type: 'outcomeRecorded' });
  }
}
