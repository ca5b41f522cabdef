import { App, Stack } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { parseConfig } from '../lib/config/load';
import type { PipelineConfig, ShareConfig } from '../lib/config/schema';
import {
  PULL_ACTIONS,
  PUSH_ACTIONS,
  repositoryShareStatements,
} from '../lib/constructs/repository-share-policy';
import { problemsOf } from './support/config';

function configWithShare(shareYaml: string, topLevelYaml = ''): PipelineConfig {
  return parseConfig(`webhook:
  allowedCidrs: [backlog-jp]
${topLevelYaml}
repositories:
  - name: shop-api
    source: { provider: github, repository: example/shop-api, cloneUrl: "git@github.com:example/shop-api.git" }
    share: ${shareYaml}
`);
}

function shareOf(shareYaml: string): ShareConfig | ShareConfig[] {
  const share = configWithShare(shareYaml).repositories[0]?.share;
  if (!share) throw new Error('no share parsed');
  return share;
}

/** The statements as they appear in the template (tokens resolved as CloudFormation JSON). */
function rendered(statements: iam.PolicyStatement[]): Record<string, unknown>[] {
  const stack = new Stack(new App(), 'Policy');
  return statements.map((s) => stack.resolve(s.toStatementJson()) as Record<string, unknown>);
}

function accountRoot(account: string): unknown {
  return { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:iam::${account}:root`]] };
}

describe('repositoryShareStatements', () => {
  test('GIVEN the sample shop-api share WHEN rendered THEN one Allow statement: the account root, the pull actions, the tag and the CIDR, and no Resource', () => {
    const [statement, ...rest] = rendered(
      repositoryShareStatements(
        shareOf(
          '{ accounts: ["123456789012"], actions: pull, principalTags: { job-category: developer }, sourceIps: ["203.0.113.0/24"] }',
        ),
      ),
    );
    expect(rest).toEqual([]);
    expect(statement).toEqual({
      Sid: 'SharePull',
      Effect: 'Allow',
      Principal: { AWS: accountRoot('123456789012') },
      Action: [...PULL_ACTIONS],
      Condition: {
        StringEquals: { 'aws:PrincipalTag/job-category': 'developer' },
        IpAddress: { 'aws:SourceIp': ['203.0.113.0/24'] },
      },
    });
  });

  test('GIVEN push-pull THEN the statement adds exactly the four push actions', () => {
    const [statement] = rendered(
      repositoryShareStatements(shareOf('{ accounts: ["123456789012"], actions: push-pull }')),
    );
    expect(statement?.Sid).toBe('SharePushPull');
    expect(statement?.Action).toEqual([...PULL_ACTIONS, ...PUSH_ACTIONS]);
    expect(statement?.Condition).toBeUndefined();
  });

  test('GIVEN organizationId THEN the principal is "*" confined by aws:PrincipalOrgID, merged with the tag conditions', () => {
    const [statement] = rendered(
      repositoryShareStatements(
        shareOf('{ organizationId: o-a1b2c3d4e5, principalTags: { team: platform, env: prod } }'),
      ),
    );
    expect(statement?.Principal).toEqual({ AWS: '*' });
    expect(statement?.Condition).toEqual({
      StringEquals: {
        'aws:PrincipalOrgID': 'o-a1b2c3d4e5',
        'aws:PrincipalTag/team': 'platform',
        'aws:PrincipalTag/env': 'prod',
      },
    });
  });

  test('GIVEN sourceVpce THEN the condition is StringEquals on aws:SourceVpce, with no aws:SourceIp', () => {
    const [statement] = rendered(
      repositoryShareStatements(
        shareOf('{ accounts: ["123456789012"], sourceVpce: [vpce-0a1b2c3d4e5f60718] }'),
      ),
    );
    expect(statement?.Condition).toEqual({ StringEquals: { 'aws:SourceVpce': ['vpce-0a1b2c3d4e5f60718'] } });
  });

  test('GIVEN a bare address in sourceIps THEN it is written as a /32 host CIDR', () => {
    const [statement] = rendered(
      repositoryShareStatements(
        shareOf('{ accounts: ["123456789012"], sourceIps: ["203.0.113.7", "2001:db8::7"] }'),
      ),
    );
    expect(statement?.Condition).toEqual({
      IpAddress: { 'aws:SourceIp': ['203.0.113.7/32', '2001:db8::7/128'] },
    });
  });

  test('GIVEN a list of two shares THEN two statements with their own ids, principals and actions', () => {
    const statements = rendered(
      repositoryShareStatements(
        shareOf(`
      - { accounts: ["123456789012", "210987654321"], actions: pull }
      - { accounts: ["345678901234"], actions: push-pull }`),
      ),
    );
    expect(statements.map((s) => s.Sid)).toEqual(['Share1Pull', 'Share2PushPull']);
    expect(statements[0]?.Principal).toEqual({
      AWS: [accountRoot('123456789012'), accountRoot('210987654321')],
    });
    expect(statements[1]?.Principal).toEqual({ AWS: accountRoot('345678901234') });
  });

  test('GIVEN a hand-built share with both accounts and organizationId THEN it is refused naming both', () => {
    const share: ShareConfig = {
      accounts: ['123456789012'],
      organizationId: 'o-a1b2c3d4e5',
      actions: 'pull',
    };
    expect(() => repositoryShareStatements(share)).toThrow(
      /accounts or organizationId, not both.*123456789012.*o-a1b2c3d4e5/,
    );
  });
});

describe('share validation in pipeline.config.yaml', () => {
  test.each([
    [
      'an 11-digit account ID',
      '{ accounts: ["12345678901"] }',
      'repositories[0].share.accounts[0]',
      'must be a 12-digit AWS account ID',
    ],
    [
      'an unquoted account ID whose leading zero YAML dropped',
      '{ accounts: [012345678901] }',
      'repositories[0].share.accounts[0]',
      'in quotes (got 12345678901)',
    ],
    [
      "the seed's invalid address",
      '{ accounts: ["123456789012"], sourceIps: ["123.45.678.90"] }',
      'repositories[0].share.sourceIps[0]',
      '"123.45.678.90"',
    ],
    [
      'a prefix longer than 32',
      '{ accounts: ["123456789012"], sourceIps: ["203.0.113.0/33"] }',
      'repositories[0].share.sourceIps[0]',
      'CIDR',
    ],
    [
      'an unknown action',
      '{ accounts: ["123456789012"], actions: push }',
      'repositories[0].share.actions',
      'must be pull or push-pull (got "push")',
    ],
    [
      'an unknown action in a list',
      '[{ accounts: ["123456789012"], actions: admin }]',
      'repositories[0].share[0].actions',
      'must be pull or push-pull',
    ],
    [
      'an empty tag value',
      '{ accounts: ["123456789012"], principalTags: { job-category: "" } }',
      'repositories[0].share.principalTags.job-category',
      'must not be empty',
    ],
    [
      'no one to share with',
      '{ sourceIps: ["203.0.113.0/24"] }',
      'repositories[0].share',
      'needs accounts or organizationId',
    ],
    [
      'both accounts and an organization',
      '{ accounts: ["123456789012"], organizationId: o-a1b2c3d4e5 }',
      'repositories[0].share.organizationId',
      'not both',
    ],
    [
      'both sourceIps and sourceVpce',
      '{ accounts: ["123456789012"], sourceIps: ["203.0.113.0/24"], sourceVpce: [vpce-0a1b2c3d] }',
      'repositories[0].share.sourceVpce',
      'aws:SourceIp',
    ],
    [
      'a malformed organization ID',
      '{ organizationId: org-123 }',
      'repositories[0].share.organizationId',
      'AWS Organizations ID',
    ],
    [
      'a malformed VPC endpoint ID',
      '{ accounts: ["123456789012"], sourceVpce: [vpc-0a1b2c3d] }',
      'repositories[0].share.sourceVpce[0]',
      'VPC endpoint ID',
    ],
    [
      'a misspelt field',
      '{ accounts: ["123456789012"], sourceIp: ["203.0.113.0/24"] }',
      'repositories[0].share.sourceIp',
      'unknown field',
    ],
  ])('GIVEN a share with %s WHEN loaded THEN the problem names %s', (_, share, field, detail) => {
    const problems = problemsOf(
      `webhook:\n  allowedCidrs: [backlog-jp]\nrepositories:\n  - name: shop-api\n    source: { provider: github, repository: example/shop-api, cloneUrl: "git@github.com:example/shop-api.git" }\n    share: ${share}\n`,
    );
    expect(problems).toContainEqual(
      expect.stringMatching(new RegExp(`^${escapeRegExp(field)}: .*${escapeRegExp(detail)}`)),
    );
  });

  test('GIVEN an unquoted 12-digit account ID WHEN loaded THEN it is the same account as the quoted one', () => {
    expect(shareOf('{ accounts: [123456789012] }')).toMatchObject({ accounts: ['123456789012'] });
  });

  test('GIVEN a KMS key ARN without encryption KMS WHEN loaded THEN the key field is named', () => {
    const problems = problemsOf(`webhook:
  allowedCidrs: [backlog-jp]
repositories:
  - name: shop-api
    source: { provider: github, repository: example/shop-api, cloneUrl: "git@github.com:example/shop-api.git" }
    registry: { kmsKeyArn: "arn:aws:kms:ap-northeast-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab" }
`);
    expect(problems).toContainEqual(
      expect.stringMatching(/^repositories\[0\]\.registry\.kmsKeyArn: needs encryption: KMS/),
    );
  });

  test.each([
    [
      'docker-hub without credentials',
      '{ prefix: docker-hub, upstream: docker-hub }',
      'pullThroughCache[0].credentialSecretName',
      'is required for docker-hub',
    ],
    [
      'ecr-public with credentials',
      '{ prefix: ecr-public, upstream: ecr-public, credentialSecretName: ecr-pullthroughcache/x }',
      'pullThroughCache[0].credentialSecretName',
      'must be left out',
    ],
    [
      'a secret outside ecr-pullthroughcache/',
      '{ prefix: ghcr, upstream: ghcr, credentialSecretName: ghcr-token }',
      'pullThroughCache[0].credentialSecretName',
      'ecr-pullthroughcache/',
    ],
  ])(
    'GIVEN a pull-through cache rule for %s WHEN loaded THEN the problem names %s',
    (_, rule, field, detail) => {
      const problems = problemsOf(
        `webhook:\n  allowedCidrs: [backlog-jp]\npullThroughCache:\n  - ${rule}\nrepositories:\n  - name: shop-api\n    source: { provider: github, repository: example/shop-api, cloneUrl: "git@github.com:example/shop-api.git" }\n`,
      );
      expect(problems).toContainEqual(
        expect.stringMatching(new RegExp(`^${escapeRegExp(field)}: .*${escapeRegExp(detail)}`)),
      );
    },
  );

  test('GIVEN two pull-through cache rules with one prefix WHEN loaded THEN the duplicate is refused', () => {
    const problems = problemsOf(
      `webhook:\n  allowedCidrs: [backlog-jp]\npullThroughCache:\n  - { prefix: hub, upstream: ecr-public }\n  - { prefix: hub, upstream: k8s }\nrepositories:\n  - name: shop-api\n    source: { provider: github, repository: example/shop-api, cloneUrl: "git@github.com:example/shop-api.git" }\n`,
    );
    expect(problems).toContainEqual(
      expect.stringMatching(/^pullThroughCache: every rule needs its own prefix/),
    );
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
