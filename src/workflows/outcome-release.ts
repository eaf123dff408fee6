/**
 * Machine 2 (JobInput.machine): when one step of the job machine both gives its slot back (`tellPool` finished) and
 * writes its outcome, the outcome's write carries the first. The job then signals nothing itself: no signal event
 * in its history, and no workflow task for the signal's acknowledgement. The machine's rules are unchanged; this
 * only decides how two of its commands travel.
 */
import type { JobMachineCommand, PoolMessage } from '../domain/job-protocol';

/** The machine's command that gives a slot back. */
export type SlotRelease = Extract<JobMachineCommand, { type: 'tellPool' }> & { message: Extract<PoolMessage, { kind: 'finished' }> };

/** The step's commands with the slot's release folded into its outcome write, and the release that was folded. */
export function foldReleaseIntoOutcome(commands: readonly JobMachineCommand[]): {
  commands: readonly JobMachineCommand[];
  release?: SlotRelease;
} {
  const release = commands.find((c): c is SlotRelease => c.type === 'tellPool' && c.message.kind === 'finished');
  const carrier = commands.some((c) => c.type === 'recordOutcome' && !c.bestEffort);
  // Most steps neither free a slot nor end the job: their commands pass as they are, not copied.
  if (!release || !carrier) return { commands };
  return { commands: commands.filter((c) => c !== release), release };
}
