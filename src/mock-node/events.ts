/** The mock node's request log (GET /_mock/events): shared by the node and the tests that read it. */

/** What the node saw, in order: who started, who finished, who was cut off, and at which token. */
export interface NodeEvent {
  event: 'start' | 'finish' | 'abort';
  jobId: string | null;
  attempt: number | null;
  /** Index of the first token this request produces (non-zero when it continues a preempted completion). */
  fromToken: number;
  /** Tokens produced by this request so far. */
  tokens: number;
  active: number;
  at: number;
}
