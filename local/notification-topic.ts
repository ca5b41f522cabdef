import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for SNS `Publish`, the one SNS call the reporter makes, speaking SNS's query
 * protocol (form-encoded request, XML answer) on 127.0.0.1. Point the SDK at it with
 * `AWS_ENDPOINT_URL_SNS` (`env`); every message is recorded and handed to `onMessage`.
 */

export interface PublishedMessage {
  readonly topicArn: string;
  readonly subject?: string;
  readonly message: string;
}

export interface LocalNotificationTopic {
  readonly url: string;
  /** The variable that points the SDK's SNS client here. */
  readonly env: Readonly<Record<string, string>>;
  readonly messages: PublishedMessage[];
  close(): Promise<void>;
}

export async function startLocalNotificationTopic(
  onMessage?: (message: PublishedMessage) => void,
): Promise<LocalNotificationTopic> {
  const messages: PublishedMessage[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      res.setHeader('Content-Type', 'text/xml');
      if (form.get('Action') !== 'Publish') {
        res.statusCode = 400;
        res.end(
          '<ErrorResponse><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>only Publish is served</Message></Error></ErrorResponse>',
        );
        return;
      }
      const subject = form.get('Subject') ?? undefined;
      const message = {
        topicArn: form.get('TopicArn') ?? '',
        message: form.get('Message') ?? '',
        ...(subject !== undefined ? { subject } : {}),
      };
      messages.push(message);
      onMessage?.(message);
      res.end(
        `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>${randomUUID()}</MessageId></PublishResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    env: { AWS_ENDPOINT_URL_SNS: url },
    messages,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
