import type { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { parseConfig } from '../lib/config/load';
import type { PipelineConfig } from '../lib/config/schema';
import { buildApp } from './support/app';

const OTHER_ACCOUNT = '444455556666';
const EXISTING_VPC =
  '{ vpcId: vpc-0a1b2c3d4e5f60718, availabilityZones: [ap-northeast-1a, ap-northeast-1c], publicSubnetIds: [subnet-0a000000000000001, subnet-0a000000000000002], privateSubnetIds: [subnet-0b000000000000001, subnet-0b000000000000002] }';

/**
 * An installation pinned to 111122223333/ap-northeast-1 with `count` deployed repositories; `deploy`
 * is each one's `deploy` section as a YAML flow mapping.
 */
function installation(count: number, deploy: (i: number) => string, top: string[] = []): PipelineConfig {
  const repositories = Array.from({ length: count }, (_, i) =>
    [
      `  - name: team/app-${i}`,
      `    source: { provider: github, repository: example-org/app-${i}, cloneUrl: "git@github.com:example-org/app-${i}.git" }`,
      `    deploy: ${deploy(i)}`,
    ].join('\n'),
  );
  return parseConfig(
    [
      'env: { account: "111122223333", region: ap-northeast-1 }',
      ...top,
      'webhook: { allowedCidrs: [github-hooks] }',
      'repositories:',
      ...repositories,
      '',
    ].join('\n'),
  );
}

interface StackTemplate {
  stackName: string;
  template: { Resources?: Record<string, { Type: string }>; Outputs?: Record<string, unknown> };
}

/** Every stack of the synthesized cloud assembly, as CloudFormation would receive it. */
function assemblyStacks(app: App): StackTemplate[] {
  return app.synth().stacks.map((s) => ({ stackName: s.stackName, template: s.template }));
}

/** The stacks holding resources of `type`, with how many each holds. */
function whereIs(stacks: StackTemplate[], type: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { stackName, template } of stacks) {
    const n = Object.values(template.Resources ?? {}).filter((r) => r.Type === type).length;
    if (n > 0) counts[stackName] = n;
  }
  return counts;
}

describe('services in one account and region', () => {
  test('GIVEN ten deployed repositories in one account WHEN synthesized THEN the whole assembly holds one VPC with one NAT gateway, in <name>-network, and every service runs in it', () => {
    const { app, stacks } = buildApp(installation(10, () => '{ containerPort: 8080 }'));
    const synthesized = assemblyStacks(app);
    expect(whereIs(synthesized, 'AWS::EC2::VPC')).toEqual({ 'pushline-network': 1 });
    expect(whereIs(synthesized, 'AWS::EC2::NatGateway')).toEqual({ 'pushline-network': 1 });
    expect(stacks.networks.map((n) => n.stackName)).toEqual(['pushline-network']);
    const [network] = stacks.networks;
    expect(stacks.services).toHaveLength(10);
    for (const service of stacks.services) {
      expect(service.service.vpc).toBe(network?.network.vpc);
      expect(service.dependencies).toContain(network);
      // The service's subnets come from the network stack's exports.
      const ecsService = Template.fromStack(service).findResources('AWS::ECS::Service');
      expect(JSON.stringify(ecsService)).toContain('Fn::ImportValue');
    }
  });

  test('GIVEN ten deployed repositories WHEN each one more is added THEN it adds a load balancer and tasks, and the VPC stays the one of the network stack', () => {
    const ten = assemblyStacks(buildApp(installation(10, () => '{ containerPort: 8080 }')).app);
    const eleven = assemblyStacks(buildApp(installation(11, () => '{ containerPort: 8080 }')).app);
    const network = (stacks: StackTemplate[]) =>
      stacks.find((s) => s.stackName === 'pushline-network')?.template;
    expect(network(eleven)).toEqual(network(ten));
    expect(Object.keys(whereIs(eleven, 'AWS::ElasticLoadBalancingV2::LoadBalancer'))).toHaveLength(11);
  });

  test('GIVEN network.shared: false WHEN synthesized THEN every service stack makes its own VPC and there is no network stack', () => {
    const { app, stacks } = buildApp(
      installation(3, () => '{ containerPort: 8080 }', ['network: { shared: false }']),
    );
    expect(stacks.networks).toEqual([]);
    expect(whereIs(assemblyStacks(app), 'AWS::EC2::VPC')).toEqual({
      'pushline-service-team-app-0': 1,
      'pushline-service-team-app-1': 1,
      'pushline-service-team-app-2': 1,
    });
  });

  test('GIVEN services with an existing VPC (vpcId) THEN they import it and no VPC is made anywhere', () => {
    const { app, stacks } = buildApp(
      installation(
        3,
        () => `{ containerPort: 8080, testListenerCidrs: ["10.20.0.0/16"], vpc: ${EXISTING_VPC} }`,
      ),
    );
    expect(stacks.networks).toEqual([]);
    expect(whereIs(assemblyStacks(app), 'AWS::EC2::VPC')).toEqual({});
    Template.fromStack(stacks.services[0] ?? stacks.shared).hasResourceProperties('AWS::ECS::Service', {
      NetworkConfiguration: {
        AwsvpcConfiguration: { Subnets: ['subnet-0b000000000000001', 'subnet-0b000000000000002'] },
      },
    });
  });

  test('GIVEN services of two VPC shapes THEN those of one shape share one network, named after its shape', () => {
    const { app, stacks } = buildApp(
      installation(4, (i) =>
        i % 2 === 0
          ? '{ containerPort: 8080 }'
          : '{ containerPort: 8080, vpc: { maxAzs: 3, natGateways: 2 } }',
      ),
    );
    expect(stacks.networks.map((n) => n.stackName)).toEqual([
      'pushline-network',
      'pushline-network-3az-2nat',
    ]);
    const synthesized = assemblyStacks(app);
    expect(whereIs(synthesized, 'AWS::EC2::VPC')).toEqual({
      'pushline-network': 1,
      'pushline-network-3az-2nat': 1,
    });
    expect(whereIs(synthesized, 'AWS::EC2::NatGateway')).toEqual({
      'pushline-network': 1,
      'pushline-network-3az-2nat': 2,
    });
    expect(stacks.services[1]?.service.vpc).toBe(stacks.networks[1]?.network.vpc);
  });
});

test('GIVEN the only service with validation drops it WHEN synthesized THEN the network keeps every export, so its deploy, which runs first, deletes none the old service stack still imports', () => {
  const outputs = (deploy: string) => {
    const { stacks } = buildApp(installation(2, (i) => (i === 0 ? deploy : '{ containerPort: 8080 }')));
    const [network] = stacks.networks;
    if (network === undefined) throw new Error('no network');
    return Template.fromStack(network).toJSON().Outputs as Record<string, unknown>;
  };
  const withValidation = outputs(
    '{ containerPort: 8080, validation: { path: /health, expectStatus: 200, timeoutSeconds: 5 } }',
  );
  expect(outputs('{ containerPort: 8080 }')).toEqual(withValidation);
  // The VPC, its CIDR, two public and two private subnets, and the NAT gateway's address.
  expect(Object.keys(withValidation)).toHaveLength(7);
});

describe('environments in another account', () => {
  const config = installation(
    2,
    () =>
      `{ containerPort: 8080, environments: [{ name: staging }, { name: production, account: "${OTHER_ACCOUNT}", approval: true }] }`,
  );

  test('GIVEN two repositories with staging here and production in another account THEN there is one network per account, each in its own account, shared by that account services', () => {
    const { app, stacks } = buildApp(config);
    expect(stacks.networks.map((n) => [n.stackName, n.account])).toEqual([
      ['pushline-network', '111122223333'],
      [`pushline-network-${OTHER_ACCOUNT}`, OTHER_ACCOUNT],
    ]);
    expect(whereIs(assemblyStacks(app), 'AWS::EC2::VPC')).toEqual({
      'pushline-network': 1,
      [`pushline-network-${OTHER_ACCOUNT}`]: 1,
    });
    for (const service of stacks.services) {
      const network = stacks.networks.find((n) => n.account === service.account);
      expect(service.service.vpc).toBe(network?.network.vpc);
    }
  });

  test.each([
    ['pinned to an account', config],
    [
      'environment-agnostic, with a VPC shape without NAT gateways',
      {
        ...installation(3, (i) => `{ containerPort: 8080${i === 1 ? ', vpc: { natGateways: 0 }' : ''} }`),
        env: undefined,
      },
    ],
  ])(
    'GIVEN shared networks, %s, WHEN synthesized with cdk-nag THEN no finding is left unacknowledged',
    (_name, c) => {
      const { app } = buildApp(c, { nag: true });
      expect(() => app.synth()).not.toThrow();
    },
  );
});

describe('the validation hook in a shared network', () => {
  test('GIVEN validation THEN the test listener admits the shared network NAT gateway address, where the hook calls from', () => {
    const { stacks } = buildApp(
      installation(
        1,
        () => '{ containerPort: 8080, validation: { path: /health, expectStatus: 200, timeoutSeconds: 5 } }',
      ),
    );
    const [service] = stacks.services;
    const [network] = stacks.networks;
    if (service === undefined || network === undefined) throw new Error('no service or network');
    expect(network.network.egressIps).toHaveLength(1);
    const groups = Template.fromStack(service).findResources('AWS::EC2::SecurityGroup');
    // Resolved after synthesis, so that the reference reads as the consuming stack sees it.
    const natAddress = service.resolve(`${network.network.egressIps[0]}/32`);
    const loadBalancerGroup = Object.entries(groups).find(([id]) =>
      id.includes('LoadBalancerSecurityGroup'),
    )?.[1] as {
      Properties: { SecurityGroupIngress: { CidrIp?: unknown; FromPort: number; Description: string }[] };
    };
    expect(loadBalancerGroup.Properties.SecurityGroupIngress).toContainEqual(
      expect.objectContaining({
        CidrIp: natAddress,
        FromPort: 8080,
        Description: 'Validation hook, through the NAT gateway',
      }),
    );
    expect(JSON.stringify(natAddress)).toContain('Fn::ImportValue');
  });
});
