import { LastGoodValue, ValueUnavailableError } from '../../lambda/webhook/last-good-value';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A value source that answers from a script, with a clock the test moves. */
function setup(script: (() => Promise<string>)[]) {
  let now = 0;
  let reads = 0;
  const stale: number[] = [];
  const value = new LastGoodValue(
    () => {
      const answer = script[Math.min(reads, script.length - 1)] as () => Promise<string>;
      reads++;
      return answer();
    },
    {
      freshForMs: 5 * MINUTE,
      minIntervalMs: 30_000,
      staleForMs: 24 * HOUR,
      onStale: (_, ageMs) => stale.push(ageMs),
      now: () => now,
    },
  );
  return {
    value,
    advance: (ms: number) => {
      now += ms;
    },
    reads: () => reads,
    stale,
  };
}

const ok = (v: string) => () => Promise.resolve(v);
const fails = () =>
  Promise.reject(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));

describe('LastGoodValue (the webhook secret cache)', () => {
  test('GIVEN a value read once WHEN the service then fails THEN the last value is used, with a warning, up to 24 hours after it was read, and refused after', async () => {
    const s = setup([ok('v1'), fails]);
    expect(await s.value.get()).toBe('v1');
    s.advance(6 * MINUTE);
    expect(await s.value.get()).toBe('v1');
    expect(s.stale).toEqual([6 * MINUTE]);
    s.advance(24 * HOUR);
    await expect(s.value.get()).rejects.toBeInstanceOf(ValueUnavailableError);
  });

  test('GIVEN a cold start WHEN the service fails THEN there is no value, and no second read within the interval', async () => {
    const s = setup([fails, ok('v1')]);
    await expect(s.value.get()).rejects.toBeInstanceOf(ValueUnavailableError);
    await expect(s.value.get(true)).rejects.toBeInstanceOf(ValueUnavailableError);
    expect(s.reads()).toBe(1);
    s.advance(30_000);
    expect(await s.value.get()).toBe('v1');
  });

  test('GIVEN many callers asking for a fresh value at once and again and again THEN one read per interval', async () => {
    const s = setup([ok('v1'), ok('v2')]);
    await Promise.all(Array.from({ length: 20 }, () => s.value.get(true)));
    for (let i = 0; i < 10; i++) {
      s.advance(2_000);
      expect(await s.value.get(true)).toBe('v1');
    }
    expect(s.reads()).toBe(1);
    s.advance(10_000);
    expect(await s.value.get(true)).toBe('v2');
    expect(s.reads()).toBe(2);
  });
});
