/**
 * A value read from a service that may fail (the webhook secret from Secrets Manager), kept so that
 * a failing or slow service does not stop deliveries:
 * - within `freshForMs` of a successful read the value is used as is;
 * - at most one read per `minIntervalMs`, whoever asks (a flood of unauthenticated deliveries that
 *   each want a fresh value cannot turn into a flood of reads), and concurrent askers share one read;
 * - when a read fails, the last good value is used for up to `staleForMs` after it was read
 *   (`onStale` says so); only with no usable value does `get` throw.
 */
export interface LastGoodValueOptions {
  readonly freshForMs: number;
  readonly minIntervalMs: number;
  readonly staleForMs: number;
  /** Called when a failed read is answered with the last good value. */
  readonly onStale?: (error: unknown, ageMs: number) => void;
  readonly now?: () => number;
}

export class ValueUnavailableError extends Error {
  constructor(cause: unknown) {
    super('no value could be read and none is kept', { cause });
    this.name = 'ValueUnavailableError';
  }
}

export class LastGoodValue<T> {
  private kept: { value: T; readAt: number } | undefined;
  private lastTry: { at: number; error?: unknown } | undefined;
  private reading: Promise<T> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly read: () => Promise<T>,
    private readonly options: LastGoodValueOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The value; `fresh` asks for a new read (a rotated secret), granted at most once per interval. */
  async get(fresh = false): Promise<T> {
    const now = this.now();
    const age = this.kept ? now - this.kept.readAt : Number.POSITIVE_INFINITY;
    if (this.kept && !fresh && age < this.options.freshForMs) return this.kept.value;
    if (this.reading) return this.reading;
    if (this.lastTry && now - this.lastTry.at < this.options.minIntervalMs)
      return this.fallback(this.lastTry.error);
    this.lastTry = { at: now };
    const attempt = this.read().then(
      (value) => {
        this.kept = { value, readAt: this.now() };
        return value;
      },
      (error: unknown) => {
        if (this.lastTry) this.lastTry.error = error;
        return this.fallback(error, true);
      },
    );
    this.reading = attempt.finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private fallback(error: unknown, report = false): T {
    if (!this.kept) throw new ValueUnavailableError(error);
    const age = this.now() - this.kept.readAt;
    if (error !== undefined && age >= this.options.staleForMs) throw new ValueUnavailableError(error);
    if (report && error !== undefined) this.options.onStale?.(error, age);
    return this.kept.value;
  }
}
