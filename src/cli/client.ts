/** The CLI's HTTP client: the API URL and key from the environment, errors as the API words them. */

export interface ApiClientOptions {
  baseUrl: string;
  key?: string;
  /** The variables that set the URL and the key, named when the API cannot be reached or refuses the key. */
  urlFrom?: string;
  keyFrom?: string;
}

/** An error answered by the API (or no answer at all). */
export class CliApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export class ApiClient {
  constructor(private readonly options: ApiClientOptions) {}

  async call<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.options.key) headers.authorization = `Bearer ${this.options.key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(`${this.options.baseUrl.replace(/\/$/, '')}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new CliApiError(
        0,
        `cannot reach the API at ${this.options.baseUrl}: ${(err as Error).cause ?? (err as Error).message} (set ${this.options.urlFrom ?? 'ZEROPOOL_URL'})`,
      );
    }
    const text = await res.text();
    let parsed: any;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const message = parsed?.error?.message ?? (typeof parsed === 'string' ? parsed : res.statusText);
      const hint = res.status === 401 ? ` (set ${this.options.keyFrom ?? 'ZEROPOOL_KEY'})` : '';
      throw new CliApiError(res.status, `${res.status} ${message}${hint}`, parsed);
    }
    return parsed as T;
  }
}
