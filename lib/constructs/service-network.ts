import { Aws, Fn } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { createLogBucket } from './log-bucket';

/** The shape of the VPC: how many zones, how many NAT gateways. */
export interface ServiceNetworkProps {
  /**
   * Availability Zones, each with a public and a private subnet.
   * @default 2
   */
  readonly maxAzs?: number;
  /**
   * NAT gateways for the private subnets' way out. With 0 the private subnets are isolated and
   * tasks that need the internet run in the public subnets with a public address.
   * @default 1
   */
  readonly natGateways?: number;
}

/**
 * One VPC that the ECS services of an installation share in one account and region: public
 * subnets for the load balancers, private subnets (behind the NAT gateways) for the tasks, and
 * rejected traffic logged to a bucket of its own. A service added to it adds its load balancer and
 * tasks, not another network: the NAT gateways are the network's hourly cost, paid once.
 */
export class ServiceNetwork extends Construct {
  public readonly vpc: ec2.Vpc;
  /** Receives the VPC flow logs (rejected traffic). */
  public readonly flowLogBucket: s3.Bucket;
  /**
   * The public addresses the private subnets reach the internet from (one per NAT gateway); a
   * function in the VPC calling an internet-facing load balancer arrives from one of them.
   */
  public readonly egressIps: readonly string[];

  constructor(scope: Construct, id: string, props: ServiceNetworkProps = {}) {
    super(scope, id);
    this.flowLogBucket = createLogBucket(this, 'FlowLogs', { receives: 'the VPC flow logs' });
    this.vpc = createServiceVpc(this, props, this.flowLogBucket);
    this.egressIps = natPublicIps(this.vpc);
  }
}

/**
 * A VPC shaped for ECS services (construct ID `Vpc`), its rejected traffic logged to
 * `flowLogBucket` under `vpc-flow-logs/`.
 */
export function createServiceVpc(
  scope: Construct,
  shape: ServiceNetworkProps,
  flowLogBucket: s3.IBucket,
): ec2.Vpc {
  const natGateways = shape.natGateways ?? 1;
  const vpc = new ec2.Vpc(scope, 'Vpc', {
    maxAzs: shape.maxAzs ?? 2,
    natGateways,
    subnetConfiguration: [
      { name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
      natGateways > 0
        ? { name: 'Private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 }
        : { name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 },
    ],
  });
  const flowLogPrefix = 'vpc-flow-logs';
  vpc.addFlowLog('FlowLogs', {
    destination: ec2.FlowLogDestination.toS3(flowLogBucket, `${flowLogPrefix}/`),
    trafficType: ec2.FlowLogTrafficType.REJECT,
  });
  // What the log delivery service would otherwise add to the bucket policy itself, where the next
  // stack update would remove it again (CDK adds it only under a feature flag this app does not set).
  const fromThisAccountsLogs = {
    StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
    ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:*` },
  };
  flowLogBucket.addToResourcePolicy(
    new iam.PolicyStatement({
      actions: ['s3:PutObject'],
      principals: [new iam.ServicePrincipal('delivery.logs.amazonaws.com')],
      resources: [flowLogBucket.arnForObjects(`${flowLogPrefix}/AWSLogs/${Aws.ACCOUNT_ID}/*`)],
      conditions: {
        ...fromThisAccountsLogs,
        StringEquals: { ...fromThisAccountsLogs.StringEquals, 's3:x-amz-acl': 'bucket-owner-full-control' },
      },
    }),
  );
  flowLogBucket.addToResourcePolicy(
    new iam.PolicyStatement({
      actions: ['s3:GetBucketAcl', 's3:ListBucket'],
      principals: [new iam.ServicePrincipal('delivery.logs.amazonaws.com')],
      resources: [flowLogBucket.bucketArn],
      conditions: fromThisAccountsLogs,
    }),
  );
  return vpc;
}

/** The Elastic IPs of a VPC's NAT gateways, which `ec2.Vpc` makes as the `EIP` child of each public subnet. */
export function natPublicIps(vpc: ec2.IVpc): string[] {
  return vpc.publicSubnets.flatMap((subnet) => {
    const eip = subnet.node.tryFindChild('EIP') as ec2.CfnEIP | undefined;
    return eip ? [eip.attrPublicIp] : [];
  });
}

/**
 * The first `count` Availability Zones of the region as CloudFormation resolves them
 * (`Fn::GetAZs`), for a stack's `availabilityZones`: instead of CDK's synthesis-time look-up for
 * stacks with a fixed `env`, so that every config synthesizes offline.
 */
export function zonesResolvedAtDeploy(count: number): string[] {
  return Array.from({ length: count }, (_, i) => Fn.select(i, Fn.getAzs()));
}
