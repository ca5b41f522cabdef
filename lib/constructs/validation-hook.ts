import { join } from 'node:path';
import { Duration, PhysicalName, Validations } from 'aws-cdk-lib';
import type * as codedeploy from 'aws-cdk-lib/aws-codedeploy';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledgeFunction, createPushlineFunction } from './pushline-function';

const ENTRY = join(__dirname, '..', '..', 'lambda', 'validation-hook', 'index.ts');

export interface ValidationHookProps {
  /** The VPC the function runs in, next to the service it checks. */
  readonly vpc: ec2.IVpc;
  /**
   * Subnets of the function; they need a route to the CodeDeploy API (a NAT gateway).
   * @default the VPC's private subnets with egress
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** The URL the check requests: the test listener and the path, e.g. `http://<dns>:8080/health`. */
  readonly testUrl: string;
  /**
   * The HTTP status that means the new version is good.
   * @default 200
   */
  readonly expectStatus?: number;
  /**
   * How long the check waits for the answer.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /** The deployment group whose deployments the function reports on (and only those). */
  readonly deploymentGroup: codedeploy.IEcsDeploymentGroup;
  /**
   * Log retention of the function.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * A CodeDeploy ECS lifecycle hook function (`AfterAllowTestTraffic` in the AppSpec): it calls the
 * new task set through the test listener and reports `Succeeded` or `Failed` with
 * `PutLifecycleEventHookExecutionStatus`, so a failing version rolls back before production
 * traffic moves.
 */
export class ValidationHook extends Construct {
  public readonly function: nodejs.NodejsFunction;
  /** The function's security group: allow it to reach the test listener. */
  public readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: ValidationHookProps) {
    super(scope, id);
    const expectStatus = props.expectStatus ?? 200;
    const timeout = props.timeout ?? Duration.seconds(30);
    if (!Number.isInteger(expectStatus) || expectStatus < 100 || expectStatus > 599) {
      throw new Error(`ValidationHook: expectStatus must be an HTTP status (100-599), got ${expectStatus}`);
    }
    if (timeout.toSeconds() < 1 || timeout.toSeconds() > 600) {
      throw new Error(`ValidationHook: timeout must be 1 to 600 seconds, got ${timeout.toSeconds()}`);
    }
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Validation hook: calls the test listener and the CodeDeploy API',
      allowAllOutbound: true,
    });
    this.function = createPushlineFunction(this, 'Function', {
      entry: ENTRY,
      description: 'pushline validation hook: checks the new task set through the test listener',
      // A name only when the pipeline's stack in another account writes it into the AppSpec.
      functionName: PhysicalName.GENERATE_IF_NEEDED,
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      logGroupId: 'Logs',
      // The check, then the report to CodeDeploy.
      timeout: timeout.plus(Duration.seconds(15)),
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [this.securityGroup],
      environment: {
        TEST_URL: props.testUrl,
        EXPECT_STATUS: String(expectStatus),
        TIMEOUT_MS: String(timeout.toMilliseconds()),
      },
    });
    this.function.addToRolePolicy(
      new iam.PolicyStatement({
        actions: ['codedeploy:PutLifecycleEventHookExecutionStatus'],
        resources: [props.deploymentGroup.deploymentGroupArn],
      }),
    );
    acknowledgeFunction(this.function);
    Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      reason:
        "Lambda needs to manage the function's network interfaces in the VPC; AWS maintains this policy for exactly that.",
    });
  }

  /** Lets CodeDeploy (the deployment group's service role) invoke the hook: this function only, unversioned. */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['lambda:InvokeFunction'],
      resourceArns: [this.function.functionArn],
    });
  }
}
