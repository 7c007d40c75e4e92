/** A small REST client for the chat API, with a timeout on every call. */

const REQUEST_TIMEOUT_MS = 15_000;

/** A non-2xx answer, with the contract's error code when there is one. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function errorCode(body: unknown): string {
  const error = (body as { error?: { code?: unknown } } | undefined)?.error;
  return typeof error?.code === "string" ? error.code : "HTTP";
}

export class Api {
  constructor(
    readonly url: string,
    private readonly token?: string,
  ) {}

  as(token: string): Api {
    return new Api(this.url, token);
  }

  /** The same caller, through another node. */
  at(url: string): Api {
    return new Api(url, this.token);
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>("GET", path);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>("POST", path, body);
  }

  private async call<T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(this.url + path, {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const what = `${method} ${path} answered ${res.status}`;
      throw new HttpError(res.status, errorCode(parsed), `${what}: ${text}`);
    }
    return parsed as T;
  }
}
