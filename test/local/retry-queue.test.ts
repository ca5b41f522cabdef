import type { SQSEvent } from 'aws-lambda';
import { type LocalAwsEndpoints, startLocalAwsEndpoints } from '../../local/aws-endpoints';
import { LocalRetryQueue, type RetryEvent } from '../../local/local-retry-queue';

/**
 * The local stand-in for Lambda's SQS event source: what the retry consumer gets, and what happens
 * to a message it fails, as the redrive policy and its own visibility timeouts say.
 */
describe('local retry queue', () => {
  let endpoints: LocalAwsEndpoints;
  let queue: LocalRetryQueue | undefined;
  beforeEach(async () => {
    endpoints = await startLocalAwsEndpoints();
  });
  afterEach(async () => {
    queue?.stop();
    await endpoints.close();
  });

  /** A consumer that fails the first `failures` receives, asking SQS for a delay each time, as retry.ts does. */
  function consumer(failures: number, received: SQSEvent[]) {
    return async (event: SQSEvent) => {
      received.push(event);
      const record = event.Records[0];
      if (!record || received.length > failures) return { batchItemFailures: [] };
      endpoints.visibilityChanges.push({ receiptHandle: record.receiptHandle, visibilityTimeout: 30 });
      return { batchItemFailures: [{ itemIdentifier: record.messageId }] };
    };
  }

  test('GIVEN a message the consumer fails twice WHEN it is retried THEN the third receive starts it, with the receive count rising', async () => {
    const received: SQSEvent[] = [];
    const events: RetryEvent[] = [];
    queue = new LocalRetryQueue({
      endpoints,
      handler: consumer(2, received),
      maxReceiveCount: 5,
      millisecondsPerSecond: 1,
      onEvent: (e) => events.push(e),
    });
    endpoints.sentMessages.push({ queueUrl: endpoints.queueUrl, body: '{"request":{}}' });
    await queue.idle();
    expect(received.map((e) => e.Records[0]?.attributes.ApproximateReceiveCount)).toEqual(['1', '2', '3']);
    expect(received.every((e) => e.Records[0]?.body === '{"request":{}}')).toBe(true);
    expect(events.map((e) => [e.attempt, e.outcome, e.retryInSeconds])).toEqual([
      [1, 'failed', 30],
      [2, 'failed', 30],
      [3, 'delivered', undefined],
    ]);
    expect(queue.deadLetters).toEqual([]);
  });

  test('GIVEN a message the consumer always fails THEN after maxReceiveCount receives it is in the dead-letter list', async () => {
    const received: SQSEvent[] = [];
    queue = new LocalRetryQueue({
      endpoints,
      handler: consumer(99, received),
      maxReceiveCount: 3,
      millisecondsPerSecond: 1,
    });
    endpoints.sentMessages.push({ queueUrl: endpoints.queueUrl, body: 'poison' });
    await queue.idle();
    expect(received).toHaveLength(3);
    expect(queue.deadLetters.map((m) => m.body)).toEqual(['poison']);
  });
});
