import { BUILD_NOT_KEPT } from '../../lambda/webhook/start-build';
import { AWS_FAULTS, type LocalAwsEndpoints } from '../../local/aws-endpoints';
import {
  BUNDLED_TEST_CONFIG,
  type BundledWebhook,
  type BundleProcess,
  startBundledWebhook,
  startBundleProcess,
} from './bundle';
import { fixture, githubDelivery, SECRET } from './support';

/**
 * The fault-injection matrix: the bundled function from `cdk synth`, as a warm Lambda instance in
 * its own process, against local AWS endpoints of which one at a time fails in each way a service
 * can (HTTP 500, throttling, connection refused, accepts and never answers, does the work but its
 * answer never arrives, an answer that is not its JSON). For every cell a valid push, a redelivery of it and a forged delivery: the answer,
 * how long it took, and that the push ends as exactly one build or one queued request (at most
 * one duplicate StartBuild while the delivery table is down), never none.
 *
 * The AWS client bounds are shortened so that the never-answering cases stay quick; one case runs
 * with the production defaults (client-config.ts) to show they answer inside GitHub's 10 s.
 */

const SHORT_BOUNDS = {
  PUSHLINE_AWS_CONNECT_TIMEOUT_MS: '200',
  PUSHLINE_AWS_REQUEST_TIMEOUT_MS: '400',
  PUSHLINE_AWS_MAX_ATTEMPTS: '2',
};
/** With the short bounds: a secret read that fails twice (forged delivery) plus a healthy rest. */
const SHORT_BOUND_MS = 4_000;
/** With the production bounds: inside GitHub's and GitLab's 10 s, with room for the network. */
const PRODUCTION_BOUND_MS = 8_000;
const PUSH = fixture('github', 'push-branch-created.json');

let webhook: BundledWebhook;
let bundle: string;
let aws: LocalAwsEndpoints;
let functionEnv: Record<string, string>;
const running: BundleProcess[] = [];

beforeAll(async () => {
  webhook = await startBundledWebhook(BUNDLED_TEST_CONFIG);
  ({ bundle, aws } = webhook);
  functionEnv = {
    ...webhook.env,
    // Every delivery goes to Secrets Manager, so that its faults are met on every delivery.
    SECRET_CACHE_SECONDS: '0',
    SECRET_READ_INTERVAL_SECONDS: '0',
  };
}, 300_000);

afterEach(async () => {
  for (const fn of running.splice(0)) await fn.kill();
  for (const service of ['codebuild', 'secretsmanager', 'sqs', 'dynamodb'] as const)
    await aws.fault(service, undefined);
});

afterAll(() => webhook?.close());

async function warmFunction(env: Record<string, string> = SHORT_BOUNDS): Promise<BundleProcess> {
  const fn = await startBundleProcess(bundle, { ...functionEnv, ...env });
  running.push(fn);
  return fn;
}

const push = (deliveryId: string) => githubDelivery(PUSH, { deliveryId });
const forged = (deliveryId: string) => githubDelivery(PUSH, { deliveryId, secret: 'not-the-secret' });

/** What became of one delivery: builds started (distinct ids), StartBuild calls and queued requests. */
function fate(deliveryId: string) {
  const ofDelivery = (env: readonly { name: string; value: string }[] | undefined) =>
    env?.some((v) => v.name === 'DELIVERY_ID' && v.value === deliveryId) ?? false;
  return {
    builds: [...aws.builds.values()].filter((b) => ofDelivery(b.environment.environmentVariables)).length,
    startBuildCalls: aws.startBuildCalls.filter((c) => ofDelivery(c.environmentVariablesOverride)).length,
    queued: aws.sentMessages.filter((m) => m.body.includes(`"DELIVERY_ID":"${deliveryId}"`)).length,
  };
}

describe.each(['secretsmanager', 'dynamodb', 'codebuild', 'sqs'] as const)(
  'GIVEN a warm webhook function WHEN %s fails',
  (service) => {
    test(`in each way (${AWS_FAULTS.join(', ')}) THEN a push, its redelivery and a forged delivery are answered in time and the push is kept once`, async () => {
      const fn = await warmFunction();
      expect((await fn.invoke(push(`warm-${service}`))).statusCode).toBe(202);

      const rows: string[] = [];
      for (const fault of AWS_FAULTS) {
        await aws.fault(service, fault);
        const id = `${service}-${fault}`;
        const first = await fn.invoke(push(id));
        const again = await fn.invoke(push(id));
        const refused = await fn.invoke(forged(`${id}-forged`));
        await aws.fault(service, undefined);

        const kept = fate(id);
        rows.push(
          `${fault}: ${first.statusCode} ${again.statusCode} ${refused.statusCode} in ` +
            `${[first, again, refused].map((r) => Math.round(r.elapsedMs)).join('/')} ms; ` +
            `builds ${kept.builds}, StartBuild calls ${kept.startBuildCalls}, queued ${kept.queued}`,
        );
        expect({ fault, statuses: [first.statusCode, again.statusCode, refused.statusCode] }).toEqual({
          fault,
          statuses: [202, 202, 401],
        });
        for (const answer of [first, again, refused]) expect(answer.elapsedMs).toBeLessThan(SHORT_BOUND_MS);
        // Kept, and at most once more where the service may have acted on a request whose answer was
        // lost (a build started and also queued: the retry's idempotency token collapses them).
        expect(kept.builds + kept.queued).toBeGreaterThanOrEqual(1);
        expect(kept.builds + kept.queued).toBeLessThanOrEqual(
          service === 'codebuild' && fault === 'answer-lost' ? 2 : 1,
        );
        // Only without the delivery table, or when the SDK retried a StartBuild whose answer was lost,
        // may CodeBuild be asked again; the same idempotency token collapses it.
        const repeatable = service === 'dynamodb' || (service === 'codebuild' && fault === 'answer-lost');
        expect(kept.startBuildCalls).toBeLessThanOrEqual(repeatable ? 2 : 1);
        expect(fate(`${id}-forged`)).toEqual({ builds: 0, startBuildCalls: 0, queued: 0 });
      }
      process.stdout.write(`fault matrix, ${service}:\n  ${rows.join('\n  ')}\n`);
    });
  },
);

describe('failures no AWS path can absorb', () => {
  test.each(AWS_FAULTS)(
    'GIVEN a cold function WHEN Secrets Manager fails (%s) THEN 503 in time and no build',
    async (fault) => {
      await aws.fault('secretsmanager', fault);
      const fn = await warmFunction();
      const answer = await fn.invoke(push(`cold-${fault}`));
      expect(answer.statusCode).toBe(503);
      expect(answer.elapsedMs).toBeLessThan(SHORT_BOUND_MS);
      expect(fate(`cold-${fault}`)).toEqual({ builds: 0, startBuildCalls: 0, queued: 0 });
    },
  );

  test('GIVEN CodeBuild and the retry queue both fail WHEN a push arrives THEN 503, the whole StartBuild input is logged at ERROR, and a redelivery once they recover builds it once', async () => {
    const fn = await warmFunction();
    await aws.fault('codebuild', 'throttling');
    await aws.fault('sqs', 'never-answers');
    const lost = await fn.invoke(push('both-down'));
    expect(lost.statusCode).toBe(503);
    expect(lost.elapsedMs).toBeLessThan(SHORT_BOUND_MS);
    await waitFor(() => fn.logLines.some((l) => l.message === BUILD_NOT_KEPT));
    const line = fn.logLines.find((l) => l.message === BUILD_NOT_KEPT);
    expect(line).toMatchObject({
      level: 'ERROR',
      startBuild: {
        projectName: 'pushline-hello-world',
        idempotencyToken: expect.stringMatching(/^[0-9a-f]{64}$/),
        environmentVariablesOverride: expect.arrayContaining([
          { name: 'DELIVERY_ID', value: 'both-down', type: 'PLAINTEXT' },
          { name: 'COMMIT_SHA', value: '6113728f27ae82c7b1a177c8d03f9e96e0adf246', type: 'PLAINTEXT' },
        ]),
      },
    });
    for (const value of Object.values(SECRET)) expect(JSON.stringify(line)).not.toContain(value);

    await aws.fault('codebuild', undefined);
    await aws.fault('sqs', undefined);
    const redelivered = await fn.invoke(push('both-down'));
    expect(redelivered.statusCode).toBe(202);
    expect(fate('both-down')).toMatchObject({ builds: 1, queued: 0 });
  });
});

describe('the in-progress record of a first delivery that dies', () => {
  test('GIVEN the first delivery is killed while CodeBuild hangs WHEN redelivered after the function timeout THEN it builds once; before, it is answered as being handled', async () => {
    const timeoutMs = 4_000;
    await aws.fault('codebuild', 'never-answers');
    const first = await startBundleProcess(bundle, { ...functionEnv }, timeoutMs);
    running.push(first);
    const codebuildCallsBefore = aws.requests.filter((r) => r.service === 'codebuild').length;
    const startedAt = Date.now();
    void first.invoke(push('killed-first'));
    await waitFor(() => aws.requests.filter((r) => r.service === 'codebuild').length > codebuildCallsBefore);
    await first.kill();
    await aws.fault('codebuild', undefined);

    const fn = await warmFunction();
    const early = await fn.invoke(push('killed-first'));
    expect(Date.now() - startedAt).toBeLessThan(timeoutMs);
    expect(JSON.parse(early.body)).toEqual({ ignored: 'delivery already being handled' });
    await new Promise((resolve) => setTimeout(resolve, startedAt + timeoutMs + 200 - Date.now()));
    const late = await fn.invoke(push('killed-first'));
    expect(late.statusCode).toBe(202);
    expect(fate('killed-first')).toMatchObject({ builds: 1, queued: 0 });
  });
});

describe('the production bounds', () => {
  test('GIVEN CodeBuild accepts connections and never answers WHEN a push arrives with the default SDK bounds THEN it is queued within 8 s', async () => {
    const fn = await warmFunction({});
    expect((await fn.invoke(push('production-warm'))).statusCode).toBe(202);
    await aws.fault('codebuild', 'never-answers');
    const answer = await fn.invoke(push('production-hang'));
    expect(answer.statusCode).toBe(202);
    expect(JSON.parse(answer.body)).toEqual({ queued: [{ repository: 'hello-world' }] });
    expect(answer.elapsedMs).toBeLessThan(PRODUCTION_BOUND_MS);
    process.stdout.write(
      `production bounds, CodeBuild never answers: queued in ${Math.round(answer.elapsedMs)} ms\n`,
    );
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!condition()) throw new Error('condition not met within 5 s');
}
