import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expandCidrs, isCidr } from '../lib/config';
import { configJsonSchema } from '../lib/config/json-schema';
import { loadConfig, parseConfig } from '../lib/config/load';
import { ROOT, SAMPLE_CONFIG } from './support/app';
import { problemsOf } from './support/config';

const MINIMAL_REPO = `
  - name: shop-api
    source:
      provider: github
      repository: example/shop-api
      cloneUrl: git@github.com:example/shop-api.git`;

describe('pipeline.config.yaml', () => {
  test('GIVEN the shipped sample WHEN loaded THEN it validates with defaults filled in', () => {
    const config = loadConfig(SAMPLE_CONFIG);
    expect(config.repositories.map((r) => r.source.provider).sort()).toEqual(['backlog', 'github', 'gitlab']);
    expect(config.repositories.some((r) => r.deploy !== undefined)).toBe(true);
    const web = config.repositories.find((r) => r.name === 'shop-web');
    expect(web?.build).toEqual({
      computeType: 'small',
      timeoutMinutes: 30,
      concurrentBuildLimit: 2,
      logRetentionDays: 30,
      arch: 'amd64',
    });
  });

  test('GIVEN a file with every kind of mistake WHEN loaded THEN each is reported on its own line naming the field and value', () => {
    const problems = problemsOf(readFileSync(join(__dirname, 'fixtures', 'config', 'mistakes.yaml'), 'utf8'));
    const expected: [string, string][] = [
      ['webhook.allowedCidrs[1]', '"123.45.678.90/32"'],
      ['repositories[0].share.accounts[0]', '"12345678901"'],
      ['repositories[0].source.provider', '"sourcehut"'],
      ['repositories[1].name', 'duplicates repositories[0].name'],
      ['repositories[2].name', '"Shop_API!"'],
      ['repositories[2].branches[0]', '""'],
      ['repositories[2].brnaches', 'unknown field'],
    ];
    for (const [field, detail] of expected) {
      expect(problems.some((p) => p.startsWith(`${field}:`) && p.includes(detail))).toBe(true);
    }
    expect(problems.length).toBeGreaterThanOrEqual(expected.length);
  });

  test('GIVEN a repository name whose stack name would pass CloudFormation’s 128 characters THEN the validator refuses it naming the field', () => {
    // Both names are valid ECR names; "pushline-repo-" (14) + 115 = 129 and "pushline-service-" (17) + 112 = 129.
    const name = (length: number) => `a${'b'.repeat(length - 1)}`;
    const repo = (repoName: string, deploy: boolean) =>
      `\n  - name: ${repoName}\n    source: { provider: github, repository: example/x, cloneUrl: "git@github.com:example/x.git" }${deploy ? '\n    deploy: { containerPort: 80 }' : ''}`;
    const config = (...repos: string[]) =>
      `webhook: { allowedCidrs: [10.0.0.0/8] }\nrepositories:${repos.join('')}\n`;

    expect(() => parseConfig(config(repo(name(114), false), repo(`c${name(110)}`, true)))).not.toThrow();
    const problems = problemsOf(config(repo(name(115), false), repo(`c${name(111)}`, true)));
    expect(problems).toEqual([
      expect.stringMatching(
        /^repositories\[0\]\.name: makes the stack name 129 characters long .*over CloudFormation's 128/,
      ),
      expect.stringMatching(/^repositories\[1\]\.name: makes the stack name 129 characters long /),
    ]);
  });

  test.each([
    [
      'an existing VPC without testListenerCidrs',
      'deploy: { containerPort: 80, vpc: { vpcId: vpc-0a1b2c3d, availabilityZones: [a, b], publicSubnetIds: [subnet-0a1b2c3d, subnet-1a2b3c4d], privateSubnetIds: [subnet-2a3b4c5d, subnet-3a4b5c6d] } }',
      /^repositories\[0\]\.deploy\.testListenerCidrs: is required with an existing VPC \(vpc-0a1b2c3d\)/,
    ],
    [
      'an environment moved into an existing VPC without testListenerCidrs',
      'deploy: { containerPort: 80, environments: [{ name: staging }, { name: production, vpc: { vpcId: vpc-0a1b2c3d, availabilityZones: [a, b], publicSubnetIds: [subnet-0a1b2c3d, subnet-1a2b3c4d], privateSubnetIds: [subnet-2a3b4c5d, subnet-3a4b5c6d] } }] }',
      /^repositories\[0\]\.deploy\.environments\[1\]\.testListenerCidrs: is required with an existing VPC/,
    ],
    [
      'a production environment whose cpu override does not fit the shared memory',
      'deploy: { containerPort: 80, memory: 512, environments: [{ name: staging }, { name: production, cpu: 1024 }] }',
      /^repositories\[0\]\.deploy\.environments\[1\]\.memory: 512 MiB does not fit cpu 1024 on Fargate|^repositories\[0\]\.deploy\.memory: 512 MiB does not fit cpu 1024/,
    ],
    [
      'a Fargate size no environment can run, inherited by two environments',
      'deploy: { containerPort: 80, cpu: 300, environments: [{ name: staging }, { name: production }] }',
      /^repositories\[0\]\.deploy\.cpu: 300 is not a Fargate size/,
    ],
    [
      'a validation check of an HTTPS test listener',
      'deploy: { containerPort: 80, validation: { path: /health }, certificateArn: "arn:aws:acm:ap-northeast-1:111122223333:certificate/1234abcd-12ab-34cd-56ef-1234567890ab" }',
      /^repositories\[0\]\.deploy\.validation: cannot check an HTTPS test listener yet/,
    ],
  ])(
    'GIVEN %s THEN the validator names it (it would otherwise fail only at synth)',
    (_name, deploy, expected) => {
      const problems = problemsOf(
        `webhook: { allowedCidrs: [10.0.0.0/8] }\nrepositories:\n  - name: app\n    source: { provider: github, repository: example/x, cloneUrl: "git@github.com:example/x.git" }\n    ${deploy}\n`,
      );
      expect(problems).toEqual([expect.stringMatching(expected)]);
    },
  );

  test('GIVEN environments WHEN an environment’s service stack name would pass 128 characters THEN the repository name is refused', () => {
    // "pushline-service-" (17) + 100 + "-production" (11) = 128 fits; one more character does not.
    const config = (length: number) =>
      `webhook: { allowedCidrs: [10.0.0.0/8] }\nrepositories:\n  - name: a${'b'.repeat(length - 1)}\n    source: { provider: github, repository: example/x, cloneUrl: "git@github.com:example/x.git" }\n    deploy: { containerPort: 80, environments: [{ name: staging }, { name: production }] }\n`;
    expect(() => parseConfig(config(100))).not.toThrow();
    expect(problemsOf(config(101))).toEqual([
      expect.stringMatching(
        /^repositories\[0\]\.name: makes the stack name 129 characters long \("pushline-service-a/,
      ),
    ]);
  });

  test('GIVEN an unknown top-level key WHEN loaded THEN the typo is an error, not ignored', () => {
    const problems = problemsOf(`webhok:\n  allowedCidrs: [backlog-jp]\nrepositories:${MINIMAL_REPO}\n`);
    expect(problems).toContainEqual(expect.stringMatching(/^webhok: unknown field/));
    expect(problems).toContainEqual(expect.stringMatching(/^webhook: .*\(missing\)/));
  });

  test('GIVEN YAML that does not parse WHEN loaded THEN the line is named', () => {
    expect(problemsOf('webhook: [\n')[0]).toMatch(/^YAML line \d+/);
  });

  test('GIVEN a branch written as a full ref WHEN loaded THEN the error says to use the name', () => {
    const problems = problemsOf(
      `webhook: { allowedCidrs: [10.0.0.0/8] }\nrepositories:${MINIMAL_REPO}\n    branches: [refs/heads/main]\n`,
    );
    expect(problems).toEqual([
      expect.stringContaining('repositories[0].branches[0]: give the branch or tag name'),
    ]);
  });

  test.each([
    [
      'an existing VPC without its subnets',
      '{ vpcId: vpc-0a1b2c3d4e }',
      [
        'repositories[0].deploy.vpc.availabilityZones: is required with vpcId',
        'deploy.vpc.publicSubnetIds: is required',
      ],
    ],
    [
      'NAT gateways for an existing VPC',
      '{ vpcId: vpc-0a1b2c3d4e, natGateways: 0, availabilityZones: [a, b], publicSubnetIds: [subnet-0a1b2c3d, subnet-1a1b2c3d], privateSubnetIds: [subnet-2a1b2c3d, subnet-3a1b2c3d] }',
      ['repositories[0].deploy.vpc.natGateways: applies only to a VPC the stack creates'],
    ],
    [
      'subnets without a VPC ID',
      '{ maxAzs: 2, publicSubnetIds: [subnet-0a1b2c3d, subnet-1a1b2c3d] }',
      ['deploy.vpc.publicSubnetIds: belongs to an existing VPC'],
    ],
    [
      'a malformed VPC ID',
      '{ vpcId: vpc-1 }',
      ['deploy.vpc.vpcId: must be a VPC ID such as vpc-0a1b2c3d (got "vpc-1")'],
    ],
  ])('GIVEN %s WHEN loaded THEN the error names the field of the form the user meant', (_, vpc, expected) => {
    const problems = problemsOf(
      `webhook: { allowedCidrs: [10.0.0.0/8] }\nrepositories:${MINIMAL_REPO}\n    deploy: { containerPort: 80, vpc: ${vpc} }\n`,
    );
    for (const text of expected) expect(problems).toContainEqual(expect.stringContaining(text));
    expect(problems.join('\n')).not.toContain('unknown field');
  });

  test('GIVEN a deploy section without vpc or with maxAzs only THEN the stack creates a VPC with the defaults filled in', () => {
    const parse = (vpc: string) =>
      parseConfig(
        `webhook: { allowedCidrs: [10.0.0.0/8] }\nrepositories:${MINIMAL_REPO}\n    deploy: { containerPort: 80${vpc} }\n`,
      ).repositories[0]?.deploy?.vpc;
    expect(parse('')).toBeUndefined();
    expect(parse(', vpc: { maxAzs: 3 }')).toEqual({ maxAzs: 3, natGateways: 1 });
  });

  test('GIVEN a missing file WHEN loaded THEN the error says so without a stack trace', () => {
    expect(() => loadConfig(join(ROOT, 'no-such.yaml'))).toThrow(/cannot read the file: ENOENT/);
  });

  test.each([
    ['203.0.113.0/24', true],
    ['203.0.113.7', true],
    ['2001:db8::/32', true],
    ['123.45.678.90/32', false],
    ['10.0.0.0/33', false],
    ['10.0.0.0/', false],
    ['backlog-jp', false],
  ])('isCidr(%s) is %s', (value, valid) => {
    expect(isCidr(value)).toBe(valid);
  });

  test('GIVEN presets and bare addresses WHEN expanded THEN presets become their CIDRs and addresses single hosts', () => {
    const cidrs = expandCidrs(['backlog-jp', '198.51.100.7', '2001:db8::1', '54.248.107.22/32']);
    expect(cidrs).toContain('54.248.107.22/32');
    expect(cidrs).toContain('198.51.100.7/32');
    expect(cidrs).toContain('2001:db8::1/128');
    expect(cidrs.filter((c) => c === '54.248.107.22/32')).toHaveLength(1);
  });

  test('GIVEN the zod schema WHEN rendered as JSON Schema THEN it equals the committed pipeline.config.schema.json (run npm run schema)', () => {
    expect(readFileSync(join(ROOT, 'pipeline.config.schema.json'), 'utf8')).toBe(configJsonSchema());
  });

  test('GIVEN the sample config THEN it points editors at the committed schema', () => {
    expect(readFileSync(SAMPLE_CONFIG, 'utf8').split('\n')[0]).toBe(
      '# yaml-language-server: $schema=./pipeline.config.schema.json',
    );
  });
});
