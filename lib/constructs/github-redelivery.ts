import { join } from 'node:path';
import { Duration, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledgeFunction, createPushlineFunction } from './pushline-function';

export interface GithubRedeliveryProps {
  /** The GitHub repositories (`owner/name`) whose pushline webhook is reconciled. */
  readonly repositories: readonly string[];
  /** The webhook URL registered in GitHub; the hooks pointing at it are the ones reconciled. */
  readonly webhookUrl: string;
  /**
   * The provider-token secret, `{"github": "<token>", …}`; the token needs admin:repo_hook read and
   * write (fine-grained: "Webhooks" read and write) on the repositories.
   * @default - a secret `{"github": ""}` made here, for the operator to fill
   */
  readonly tokenSecret?: secretsmanager.ISecret;
  /**
   * GitHub's REST API (GitHub Enterprise Server: `https://HOST/api/v3`).
   * @default 'https://api.github.com'
   */
  readonly apiUrl?: string;
  /**
   * How often failed deliveries are looked for.
   * @default Duration.minutes(15)
   */
  readonly interval?: Duration;
  /**
   * How far back failed deliveries are redelivered; GitHub keeps deliveries for 3 days.
   * @default Duration.hours(6)
   */
  readonly lookback?: Duration;
  /**
   * Failed attempts of one push after which it is left to a person (an ERROR log line).
   * @default 5
   */
  readonly maxAttempts?: number;
  /**
   * Retention of the function's logs.
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Redelivers failed GitHub webhook deliveries: GitHub does not, so on a schedule a function lists
 * the recent deliveries of the pushline hook in each repository and asks GitHub to redeliver every
 * push none of whose attempts reached pushline (a 5xx or no answer in time). Redeliveries carry the
 * original delivery id, so the webhook builds each push once.
 */
export class GithubRedelivery extends Construct {
  public readonly handler: nodejs.NodejsFunction;
  public readonly schedule: events.Rule;
  /** The secret the token is read from (the one passed in, or the one made here). */
  public readonly tokenSecret: secretsmanager.ISecret;

  constructor(scope: Construct, id: string, props: GithubRedeliveryProps) {
    super(scope, id);
    const lookback = props.lookback ?? Duration.hours(6);
    const maxAttempts = props.maxAttempts ?? 5;
    validateProps(props, lookback, maxAttempts);
    this.tokenSecret = props.tokenSecret ?? this.createTokenSecret();

    this.handler = createPushlineFunction(this, 'Handler', {
      entry: join(__dirname, '..', '..', 'lambda', 'redelivery', 'index.ts'),
      description: 'pushline: redelivers GitHub webhook deliveries that failed on the pushline side',
      timeout: Duration.minutes(2),
      logRetention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
      logGroupId: 'HandlerLogs',
      environment: {
        TOKEN_SECRET_ARN: this.tokenSecret.secretArn,
        WEBHOOK_URL: props.webhookUrl,
        GITHUB_API_URL: props.apiUrl ?? 'https://api.github.com',
        REPOSITORIES: JSON.stringify(props.repositories),
        LOOKBACK_MINUTES: String(lookback.toMinutes()),
        MAX_ATTEMPTS: String(maxAttempts),
      },
    });
    acknowledgeFunction(this.handler);
    this.tokenSecret.grantRead(this.handler);

    this.schedule = new events.Rule(this, 'Schedule', {
      description: 'pushline: look for failed GitHub webhook deliveries',
      schedule: events.Schedule.rate(props.interval ?? Duration.minutes(15)),
      targets: [new targets.LambdaFunction(this.handler, { retryAttempts: 0 })],
    });
  }

  private createTokenSecret(): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, 'TokenSecret', {
      description:
        'pushline provider tokens: {"github": "<token with webhook read/write>"}, filled by the operator',
      secretObjectValue: {},
    });
    Validations.of(secret).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'A token issued by GitHub to a person or app; GitHub, not AWS, rotates it, and the operator writes the new value.',
    });
    return secret;
  }
}

function validateProps(props: GithubRedeliveryProps, lookback: Duration, maxAttempts: number): void {
  for (const repository of props.repositories) {
    if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(repository))
      throw new Error(`GithubRedelivery: repositories must be owner/name, got "${repository}"`);
  }
  if (lookback.toMinutes() < 1 || lookback.toHours({ integral: false }) > 72)
    throw new Error(
      `GithubRedelivery: lookback must be from 1 minute to 3 days (GitHub keeps deliveries 3 days), got ${lookback.toHumanString()}`,
    );
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 20)
    throw new Error(`GithubRedelivery: maxAttempts must be an integer from 1 to 20, got ${maxAttempts}`);
}
