/** Small helpers shared by the drivers that speak HTTP to a cloud API (Hyperstack, RunPod). */

/** A cloud API answered with an error status (`detail`: the provider's own message). */
export class ProviderHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly detail = message,
  ) {
    super(message);
  }
}

/** Parses JSON, or gives undefined for a body that is not JSON (an HTML error page from a proxy). */
export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** How long a Retry-After header asks to wait (seconds or an HTTP date), capped at 30 s; undefined if absent. */
export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.min(30_000, Math.max(0, seconds * 1000));
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.min(30_000, Math.max(0, at - Date.now()));
}

/** Exponential backoff within one activity attempt: 250 ms doubling, at most 8 s. */
export const backoffMs = (attempt: number): number => Math.min(8000, 250 * 2 ** (attempt - 1));

export const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
