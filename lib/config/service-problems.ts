import type { ExistingVpcConfig, NewVpcConfig } from './schema';

/**
 * The task sizes Fargate accepts: for each CPU value (CPU units), which memory values (MiB) may go
 * with it. Amazon ECS Developer Guide, "Amazon ECS task definition parameters for Fargate", Task
 * size: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size
 */
export const FARGATE_MEMORY: Readonly<Record<number, (memory: number) => boolean>> = {
  256: (m) => [512, 1024, 2048].includes(m),
  512: (m) => m >= 1024 && m <= 4096 && m % 1024 === 0,
  1024: (m) => m >= 2048 && m <= 8192 && m % 1024 === 0,
  2048: (m) => m >= 4096 && m <= 16384 && m % 1024 === 0,
  4096: (m) => m >= 8192 && m <= 30720 && m % 1024 === 0,
  8192: (m) => m >= 16384 && m <= 61440 && m % 4096 === 0,
  16384: (m) => m >= 32768 && m <= 122880 && m % 8192 === 0,
};

/** The settings of one Blue/Green service that only make sense together. */
export interface ServiceSettingsToCheck {
  readonly cpu: number;
  readonly memory: number;
  readonly vpc?: NewVpcConfig | ExistingVpcConfig | undefined;
  readonly testListenerCidrs?: readonly string[] | undefined;
  readonly certificateArn?: string | undefined;
  readonly testListenerPort: number;
}

export interface ServiceProblem {
  readonly field: 'cpu' | 'memory' | 'vpc' | 'testListenerCidrs' | 'testListenerPort';
  readonly message: string;
}

/**
 * What CloudFormation or ECS would refuse in one service's settings, each naming its field. The
 * config validator checks every environment with it, and `BlueGreenService` its own props, so a
 * config the schema accepts always synthesizes.
 */
export function serviceProblems(settings: ServiceSettingsToCheck): ServiceProblem[] {
  const problems: ServiceProblem[] = [];
  const { cpu, memory, vpc, testListenerCidrs, certificateArn, testListenerPort } = settings;
  const allowsMemory = FARGATE_MEMORY[cpu];
  if (allowsMemory === undefined)
    problems.push({
      field: 'cpu',
      message: `${cpu} is not a Fargate size; use one of ${Object.keys(FARGATE_MEMORY).join(', ')}`,
    });
  else if (!allowsMemory(memory))
    problems.push({
      field: 'memory',
      message: `${memory} MiB does not fit cpu ${cpu} on Fargate; see https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size`,
    });
  if (vpc !== undefined && 'vpcId' in vpc) {
    const { availabilityZones, publicSubnetIds, privateSubnetIds } = vpc;
    if (
      publicSubnetIds.length !== availabilityZones.length ||
      privateSubnetIds.length !== availabilityZones.length
    )
      problems.push({
        field: 'vpc',
        message: `needs one public and one private subnet per availability zone (${availabilityZones.length} zones, ${publicSubnetIds.length} public, ${privateSubnetIds.length} private subnets)`,
      });
    if (testListenerCidrs === undefined)
      problems.push({
        field: 'testListenerCidrs',
        message: `is required with an existing VPC (${vpc.vpcId}): its CIDR cannot be known without a look-up`,
      });
  }
  // With a certificate, 443 serves production and 80 redirects to it.
  const productionPorts = certificateArn === undefined ? [80] : [80, 443];
  if (productionPorts.includes(testListenerPort))
    problems.push({
      field: 'testListenerPort',
      message: `${testListenerPort} is taken by the production listener; choose another port such as 8080`,
    });
  return problems;
}
