import { randomUUID } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { LocalAwsEndpoints } from './aws-endpoints';
import { LOCAL_ACCOUNT, LOCAL_REGION } from './cloud-assembly';

/** The retry consumer as Lambda's SQS event source calls it. */
export type QueueHandler = (event: SQSEvent, context: unknown) => Promise<SQSBatchResponse | undefined>;

/** What happened to a queued build, as the progress lines show it. */
export interface RetryEvent {
  readonly messageId: string;
  readonly attempt: number;
  readonly outcome: 'delivered' | 'failed' | 'dead-lettered';
  /** For `failed`: when SQS would hand the message over again, as the consumer asked. */
  readonly retryInSeconds?: number;
}

export interface LocalRetryQueueOptions {
  readonly endpoints: LocalAwsEndpoints;
  readonly handler: QueueHandler;
  /** The queue's redrive policy: after this many receives a failing message goes to the DLQ. */
  readonly maxReceiveCount: number;
  /**
   * Local time runs faster: a visibility timeout of N seconds the consumer asks for is waited as
   * N × this many milliseconds.
   * @default 100 (30 s becomes 3 s)
   */
  readonly millisecondsPerSecond?: number;
  readonly onEvent?: (event: RetryEvent) => void;
}

interface Message {
  readonly messageId: string;
  readonly body: string;
  receiveCount: number;
}

/**
 * Lambda's SQS event source in front of the retry consumer: every message the webhook function
 * sends to the local queue is handed to the bundled consumer; one it reports as a batch item
 * failure comes back after the visibility timeout the consumer set (compressed), and after the
 * redrive policy's maxReceiveCount it moves to the dead-letter list.
 */
export class LocalRetryQueue {
  /** Messages that used up their receives, as the dead-letter queue would hold them. */
  public readonly deadLetters: { messageId: string; body: string }[] = [];
  private seen = 0;
  private inFlight = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly poller: NodeJS.Timeout;
  private readonly drained: (() => void)[] = [];

  constructor(private readonly options: LocalRetryQueueOptions) {
    this.poller = setInterval(() => this.receiveNew(), 100);
  }

  /** Resolves when no message is waiting or being handled. */
  idle(): Promise<void> {
    this.receiveNew();
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  stop(): void {
    clearInterval(this.poller);
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private receiveNew(): void {
    const sent = this.options.endpoints.sentMessages;
    while (this.seen < sent.length) {
      const message = sent[this.seen];
      this.seen += 1;
      if (!message) continue;
      this.inFlight += 1;
      void this.deliver({ messageId: randomUUID(), body: message.body, receiveCount: 0 });
    }
  }

  private async deliver(message: Message): Promise<void> {
    message.receiveCount += 1;
    const receiptHandle = randomUUID();
    const event: SQSEvent = {
      Records: [
        {
          messageId: message.messageId,
          receiptHandle,
          body: message.body,
          attributes: {
            ApproximateReceiveCount: String(message.receiveCount),
            SentTimestamp: String(Date.now()),
            SenderId: 'local',
            ApproximateFirstReceiveTimestamp: String(Date.now()),
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: `arn:aws:sqs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:pushline-build-retry`,
          awsRegion: LOCAL_REGION,
        },
      ],
    };
    let failed: boolean;
    try {
      const result = await this.options.handler(event, {});
      failed = (result?.batchItemFailures ?? []).some((f) => f.itemIdentifier === message.messageId);
    } catch {
      failed = true;
    }
    if (!failed) {
      this.report({ messageId: message.messageId, attempt: message.receiveCount, outcome: 'delivered' });
      this.done();
      return;
    }
    if (message.receiveCount >= this.options.maxReceiveCount) {
      this.deadLetters.push({ messageId: message.messageId, body: message.body });
      this.report({ messageId: message.messageId, attempt: message.receiveCount, outcome: 'dead-lettered' });
      this.done();
      return;
    }
    const change = this.options.endpoints.visibilityChanges.find((c) => c.receiptHandle === receiptHandle);
    const retryInSeconds = change?.visibilityTimeout ?? 30;
    this.report({
      messageId: message.messageId,
      attempt: message.receiveCount,
      outcome: 'failed',
      retryInSeconds,
    });
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        void this.deliver(message);
      },
      retryInSeconds * (this.options.millisecondsPerSecond ?? 100),
    );
    this.timers.add(timer);
  }

  private done(): void {
    this.inFlight -= 1;
    if (this.inFlight === 0) for (const resolve of this.drained.splice(0)) resolve();
  }

  private report(event: RetryEvent): void {
    this.options.onEvent?.(event);
  }
}
