import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { expandCidrs } from '../lib/config/cidr-presets';
import { parseConfig } from '../lib/config/load';
import type { RepositoryConfig } from '../lib/config/schema';
import { ImageRepository } from '../lib/constructs/image-repository';
import { PULL_ACTIONS, PUSH_ACTIONS } from '../lib/constructs/repository-share-policy';
import { buildApp, ROOT, sampleConfig } from './support/app';
import {
  type DeployTarget,
  expandExecuteApiResources,
  onlyResource,
  type PolicyDocument,
  resolveIntrinsics,
  simulate,
} from './support/iam-simulation';

/** Where the templates are imagined deployed: the registry owner's account. */
const OWNER: DeployTarget = { partition: 'aws', region: 'ap-northeast-1', account: '111111111111' };
const SHARED_WITH = '123456789012';
const STRANGER = '210987654321';

function repositoryArn(name: string): { arn: string; account: string } {
  return { arn: `arn:aws:ecr:${OWNER.region}:${OWNER.account}:repository/${name}`, account: OWNER.account };
}

function role(account: string, name = 'developer'): string {
  return `arn:aws:iam::${account}:role/${name}`;
}

function repositoryPolicy(template: object): PolicyDocument {
  const { properties } = onlyResource(template, 'AWS::ECR::Repository');
  return resolveIntrinsics(properties.RepositoryPolicyText, OWNER) as PolicyDocument;
}

/** The repository policy of a config's first repository, from the template its stack synthesizes. */
function repositoryPolicyFor(shareYaml: string): PolicyDocument {
  const config = parseConfig(`webhook:
  allowedCidrs: [backlog-jp]
repositories:
  - name: shared/tool
    source: { provider: github, repository: example/tool, cloneUrl: "git@github.com:example/tool.git" }
    share: ${shareYaml}
`);
  const stack = new Stack(new App(), 'Registry');
  new ImageRepository(stack, 'Images', { repository: config.repositories[0] as RepositoryConfig });
  return repositoryPolicy(Template.fromStack(stack).toJSON());
}

const sample = sampleConfig();
const { stacks } = buildApp(sample);

describe('the repository policy of the sample shop-api (pull for 123456789012, job-category=developer, 203.0.113.0/24)', () => {
  const shopApi = stacks.repositories.find((s) => s.stackName === 'pushline-repo-shop-api');
  if (!shopApi) throw new Error('the sample config has no shop-api');
  const policy = repositoryPolicy(Template.fromStack(shopApi).toJSON());
  const resource = repositoryArn('shop-api');
  const allowedContext = { 'aws:PrincipalTag/job-category': 'developer', 'aws:SourceIp': '203.0.113.25' };

  test.each(['README.md', 'README.ja.md'])(
    'GIVEN the %s section on sharing THEN the policy it shows is the one synthesized',
    (file) => {
      const readme = readFileSync(join(ROOT, file), 'utf8');
      const block = /<!-- generated-share-policy: shop-api -->\s*```json\n([\s\S]*?)```/.exec(readme)?.[1];
      expect(block).toBeDefined();
      expect(JSON.parse(block ?? 'null')).toEqual(policy);
    },
  );

  test.each(PULL_ACTIONS)(
    'GIVEN a developer-tagged role of the shared account inside the CIDR WHEN it calls %s THEN it is allowed',
    async (action) => {
      await expect(
        simulate(policy, { principal: role(SHARED_WITH), action, resource, context: allowedContext }),
      ).resolves.toBe('Allowed');
    },
  );

  test('GIVEN the same role outside the CIDR WHEN it pulls THEN it is denied', async () => {
    const context = { ...allowedContext, 'aws:SourceIp': '198.51.100.7' };
    await expect(
      simulate(policy, { principal: role(SHARED_WITH), action: 'ecr:BatchGetImage', resource, context }),
    ).resolves.toBe('ImplicitlyDenied');
  });

  test.each([
    ['another tag value', { 'aws:PrincipalTag/job-category': 'sales' }],
    ['no tag at all', {}],
  ])(
    'GIVEN a role of the shared account with %s WHEN it pulls from inside the CIDR THEN it is denied',
    async (_, tags) => {
      const context = { ...tags, 'aws:SourceIp': '203.0.113.25' };
      await expect(
        simulate(policy, { principal: role(SHARED_WITH), action: 'ecr:BatchGetImage', resource, context }),
      ).resolves.toBe('ImplicitlyDenied');
    },
  );

  test('GIVEN a developer-tagged role of another account inside the CIDR WHEN it pulls THEN it is denied', async () => {
    await expect(
      simulate(policy, {
        principal: role(STRANGER),
        action: 'ecr:BatchGetImage',
        resource,
        context: allowedContext,
      }),
    ).resolves.toBe('ImplicitlyDenied');
  });

  test.each(PUSH_ACTIONS)(
    'GIVEN the allowed role under a pull share WHEN it calls %s THEN it is denied',
    async (action) => {
      await expect(
        simulate(policy, { principal: role(SHARED_WITH), action, resource, context: allowedContext }),
      ).resolves.toBe('ImplicitlyDenied');
    },
  );

  test('GIVEN the allowed role WHEN its own identity policy does not allow ECR THEN it is denied (cross-account needs both sides)', async () => {
    const identityPolicy: PolicyDocument = {
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
    };
    await expect(
      simulate(policy, {
        principal: role(SHARED_WITH),
        action: 'ecr:BatchGetImage',
        resource,
        context: allowedContext,
        identityPolicy,
      }),
    ).resolves.toBe('ImplicitlyDenied');
  });

  test('GIVEN the allowed role calling through a VPC endpoint WHEN it pulls THEN it is denied, because aws:SourceIp is absent there', async () => {
    const context = {
      'aws:PrincipalTag/job-category': 'developer',
      'aws:SourceVpce': 'vpce-0a1b2c3d4e5f60718',
    };
    await expect(
      simulate(policy, { principal: role(SHARED_WITH), action: 'ecr:BatchGetImage', resource, context }),
    ).resolves.toBe('ImplicitlyDenied');
  });
});

describe('other share shapes', () => {
  const resource = repositoryArn('shared/tool');

  test('GIVEN a push-pull share WHEN the shared account pushes THEN every push action is allowed, and a stranger is still denied', async () => {
    const policy = repositoryPolicyFor(`{ accounts: ["${SHARED_WITH}"], actions: push-pull }`);
    for (const action of [...PULL_ACTIONS, ...PUSH_ACTIONS]) {
      await expect(simulate(policy, { principal: role(SHARED_WITH, 'ci'), action, resource })).resolves.toBe(
        'Allowed',
      );
      await expect(simulate(policy, { principal: role(STRANGER, 'ci'), action, resource })).resolves.toBe(
        'ImplicitlyDenied',
      );
    }
  });

  test('GIVEN an organization share WHEN a role of a member account pulls THEN it is allowed, and one outside the organization is denied', async () => {
    const policy = repositoryPolicyFor('{ organizationId: o-a1b2c3d4e5 }');
    const pull = { principal: role(STRANGER), action: 'ecr:BatchGetImage', resource };
    await expect(
      simulate(policy, { ...pull, context: { 'aws:PrincipalOrgID': 'o-a1b2c3d4e5' } }),
    ).resolves.toBe('Allowed');
    await expect(
      simulate(policy, { ...pull, context: { 'aws:PrincipalOrgID': 'o-zzzzzzzzzz' } }),
    ).resolves.toBe('ImplicitlyDenied');
  });

  test('GIVEN a sourceVpce share WHEN the shared account pulls through that endpoint THEN it is allowed, and through another endpoint denied', async () => {
    const policy = repositoryPolicyFor(
      `{ accounts: ["${SHARED_WITH}"], sourceVpce: [vpce-0a1b2c3d4e5f60718] }`,
    );
    const pull = { principal: role(SHARED_WITH), action: 'ecr:BatchGetImage', resource };
    await expect(
      simulate(policy, { ...pull, context: { 'aws:SourceVpce': 'vpce-0a1b2c3d4e5f60718' } }),
    ).resolves.toBe('Allowed');
    await expect(simulate(policy, { ...pull, context: { 'aws:SourceVpce': 'vpce-99999999' } })).resolves.toBe(
      'ImplicitlyDenied',
    );
  });

  test('GIVEN a list of shares WHEN each account acts THEN each gets its own entry and no more', async () => {
    const policy = repositoryPolicyFor(`
      - { accounts: ["${SHARED_WITH}"], actions: pull, sourceIps: [203.0.113.0/24] }
      - { accounts: ["${STRANGER}"], actions: push-pull }`);
    const fromOffice = { 'aws:SourceIp': '203.0.113.25' };
    await expect(
      simulate(policy, {
        principal: role(SHARED_WITH),
        action: 'ecr:BatchGetImage',
        resource,
        context: fromOffice,
      }),
    ).resolves.toBe('Allowed');
    await expect(
      simulate(policy, {
        principal: role(SHARED_WITH),
        action: 'ecr:PutImage',
        resource,
        context: fromOffice,
      }),
    ).resolves.toBe('ImplicitlyDenied');
    await expect(
      simulate(policy, {
        principal: role(STRANGER),
        action: 'ecr:PutImage',
        resource,
        context: { 'aws:SourceIp': '198.51.100.7' },
      }),
    ).resolves.toBe('Allowed');
  });
});

/** An address inside a CIDR: its network address (a host of its own for /32 and /128). */
function addressIn(cidr: string): string {
  return cidr.split('/')[0] ?? cidr;
}

describe('the webhook API resource policy of the sample (allowedCidrs backlog-jp, github-hooks, gitlab-com)', () => {
  const template = Template.fromStack(stacks.shared).toJSON();
  const { logicalId, properties } = onlyResource(template, 'AWS::ApiGateway::RestApi');
  const apiArn = `arn:aws:execute-api:${OWNER.region}:${OWNER.account}:a1b2c3d4e5`;
  const policy = expandExecuteApiResources(
    resolveIntrinsics(properties.Policy, { ...OWNER, refs: { [logicalId]: 'a1b2c3d4e5' } }) as PolicyDocument,
    apiArn,
  );
  const stage = String(onlyResource(template, 'AWS::ApiGateway::Stage').properties.StageName);
  const allowed = expandCidrs(sample.webhook.allowedCidrs);
  const invoke = (provider: string, sourceIp: string) =>
    simulate(policy, {
      principal: 'anonymous',
      action: 'execute-api:Invoke',
      resource: { arn: `${apiArn}/${stage}/POST/webhooks/${provider}`, account: OWNER.account },
      context: { 'aws:SourceIp': sourceIp },
    });

  test('GIVEN a sender inside each allowed CIDR WHEN it posts a webhook THEN API Gateway lets it through', async () => {
    expect(allowed.length).toBeGreaterThan(0);
    for (const cidr of allowed) {
      await expect(invoke('github', addressIn(cidr))).resolves.toBe('Allowed');
    }
  });

  test.each(['backlog', 'github', 'gitlab'])(
    'GIVEN a sender outside the allowlist WHEN it posts to the %s webhook THEN the policy denies it explicitly',
    async (provider) => {
      await expect(invoke(provider, '198.51.100.7')).resolves.toBe('ExplicitlyDenied');
      await expect(invoke(provider, '2001:db8::7')).resolves.toBe('ExplicitlyDenied');
    },
  );
});
