import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import {
  ServiceNetwork,
  type ServiceNetworkProps,
  zonesResolvedAtDeploy,
} from './constructs/service-network';

export interface NetworkStackProps extends StackProps, ServiceNetworkProps {}

/**
 * The VPC that the ECS services of an installation share in one account and region (one per VPC
 * shape there). A stack of its own so that it outlives any one service: the service stacks refer to
 * it, and CloudFormation refuses to delete it while one of them still does.
 */
export class NetworkStack extends Stack {
  public readonly network: ServiceNetwork;
  private readonly zoneCount: number;

  constructor(scope: Construct, id: string, props: NetworkStackProps) {
    super(scope, id, props);
    this.zoneCount = props.maxAzs ?? 2;
    this.network = new ServiceNetwork(this, 'Network', {
      maxAzs: props.maxAzs,
      natGateways: props.natGateways,
    });
  }

  /** The first `maxAzs` zones of the region, resolved by CloudFormation (see `zonesResolvedAtDeploy`). */
  public override get availabilityZones(): string[] {
    return zonesResolvedAtDeploy(this.zoneCount);
  }
}
