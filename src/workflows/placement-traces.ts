/**
 * The pool's part of a job's trace: a `PlaceJob` span from the job's arrival to the signal that hands it a
 * slot, in the trace of whoever sent the arrival (the API request or the job workflow). Spans leave the
 * workflow through the OpenTelemetry sink and are never in the history; without tracing nothing is kept.
 */
import { type Context, context, trace } from '@opentelemetry/api';

export class PlacementTraces {
  /** Arrivals that came with a recording span, by job id (workflow memory: not carried across continue-as-new). */
  private readonly waiting: Record<string, { context: Context; since: number }> = {};

  /** Called in the arrival signal's handler, where the signal's span is the active one. */
  arrived(jobId: string): void {
    const active = context.active();
    if (trace.getSpan(active)?.isRecording()) this.waiting[jobId] = { context: active, since: Date.now() };
  }

  forget(jobId: string): void {
    delete this.waiting[jobId];
  }

  /** Sends `tell` (the placement signal) from inside the job's `PlaceJob` span, so the job's handling of it nests there too. */
  async placed<T>(jobId: string, attributes: Record<string, string | number>, tell: () => Promise<T>): Promise<T> {
    const arrival = this.waiting[jobId];
    if (!arrival) return tell();
    delete this.waiting[jobId];
    const span = trace.getTracer('zeropool-pool').startSpan('PlaceJob', { startTime: arrival.since, attributes }, arrival.context);
    // The signal is sent (its own span, a child of this one, runs until delivery) and the placement is done.
    const sending = context.with(trace.setSpan(arrival.context, span), tell);
    span.end();
    return await sending;
  }
}
