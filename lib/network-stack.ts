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
    this.exportWhatServicesUse();
  }

  /**
   * Exports every value a service stack may import, whether a service imports it yet or not (the
   * names are those CDK gives the exports it makes for a reference). Otherwise the export of a value
   * the last service stopped using (such as the NAT addresses, after `deploy.validation` is removed)
   * would be deleted by the next deploy of this stack, which runs first and which CloudFormation
   * refuses while the old service stack still imports the value.
   */
  private exportWhatServicesUse(): void {
    const { vpc, egressIps } = this.network;
    const subnets = [...vpc.publicSubnets, ...vpc.privateSubnets, ...vpc.isolatedSubnets];
    for (const value of [vpc.vpcId, vpc.vpcCidrBlock, ...subnets.map((s) => s.subnetId), ...egressIps]) {
      this.exportValue(value);
    }
  }

  /** The first `maxAzs` zones of the region, resolved by CloudFormation (see `zonesResolvedAtDeploy`). */
  public override get availabilityZones(): string[] {
    return zonesResolvedAtDeploy(this.zoneCount);
  }
}
