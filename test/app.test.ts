import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { parse } from 'yaml';
import { loadConfig } from '../lib/config/load';
import type { PipelineConfig } from '../lib/config/schema';
import type { RepositoryStack } from '../lib/repository-stack';
import { buildApp, generatedConfig, ROOT, SAMPLE_CONFIG, sampleConfig } from './support/app';
import { configFieldNames } from './support/schema-fields';

const EVERY_OPTION_CONFIG = join(ROOT, 'test', 'fixtures', 'config', 'every-option.yaml');
/** The shipped sample and a config that sets every option the schema accepts. */
const NAG_CONFIGS: [string, string][] = [
  ['the sample config', SAMPLE_CONFIG],
  ['the every-option config', EVERY_OPTION_CONFIG],
];
const CONCRETE_ENV = { account: '111122223333', region: 'ap-northeast-1' };

/** CloudFormation's hard limit of resources in one stack. */
const STACK_RESOURCE_LIMIT = 500;

function resourceCount(template: Template): number {
  return Object.keys(template.toJSON().Resources ?? {}).length;
}

describe('the pushline app', () => {
  test('GIVEN the every-option config THEN it sets every field the schema accepts, so the test below synthesizes them all', () => {
    const keys = new Set<string>();
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(collect);
      else if (node !== null && typeof node === 'object')
        for (const [key, value] of Object.entries(node)) {
          keys.add(key);
          collect(value);
        }
    };
    collect(parse(readFileSync(EVERY_OPTION_CONFIG, 'utf8')));
    expect(configFieldNames().filter((name) => !keys.has(name))).toEqual([]);
  });

  // cdk-nag names IAM5 findings after the resolved ARN, which holds pseudo parameters in an
  // environment-agnostic stack and literals with a concrete env; every acknowledgement must match both.
  const nagCases: [string, string, string, PipelineConfig['env']][] = NAG_CONFIGS.flatMap(([name, file]) => [
    [name, 'environment-agnostic', file, undefined],
    [name, `pinned to ${CONCRETE_ENV.account}/${CONCRETE_ENV.region}`, file, CONCRETE_ENV],
  ]);
  test.each(nagCases)(
    'GIVEN %s, %s, WHEN synthesized with cdk-nag AwsSolutions THEN no finding is left unacknowledged',
    (_name, _form, file, env) => {
      const { app } = buildApp({ ...loadConfig(file), env }, { nag: true });
      // In-memory synthesis throws the nag report when any rule fails without an acknowledgement.
      expect(() => app.synth()).not.toThrow();
    },
  );

  test('GIVEN a resource that breaks an AwsSolutions rule WHEN synthesized THEN synthesis fails naming the rule', () => {
    const { app, stacks } = buildApp(sampleConfig(), { nag: true });
    new Bucket(stacks.shared, 'CarelessBucket');
    expect(() => app.synth()).toThrow(/AwsSolutions-S1/);
  });

  test('GIVEN the sample config THEN there is one shared stack and one stack per repository', () => {
    const { stacks } = buildApp(sampleConfig());
    expect(stacks.shared.stackName).toBe('pushline-shared');
    expect(stacks.repositories.map((s) => s.stackName)).toEqual([
      'pushline-repo-shop-api',
      'pushline-repo-shop-web',
      'pushline-repo-tools-batch',
    ]);
  });

  test('GIVEN 50 repositories WHEN synthesized with cdk-nag THEN every stack stays far below the 500-resource limit', () => {
    const { app, stacks } = buildApp(generatedConfig(50), { nag: true });
    const assembly = app.synth();
    const counts = assembly.stacks.map((s) => ({
      stack: s.stackName,
      resources: Object.keys((s.template as { Resources?: object }).Resources ?? {}).length,
    }));
    const largest = counts.reduce((a, b) => (b.resources > a.resources ? b : a));
    process.stdout.write(
      `50 repositories: ${counts.length} stacks, largest ${largest.stack} with ${largest.resources} resources\n`,
    );
    expect(stacks.repositories).toHaveLength(50);
    expect(largest.resources).toBeLessThan(STACK_RESOURCE_LIMIT / 2);
    expect(resourceCount(Template.fromStack(stacks.shared))).toBeLessThan(STACK_RESOURCE_LIMIT / 2);
  });

  test('GIVEN pull-through cache rules WHEN synthesized with cdk-nag THEN the shared stack holds the rules and the builds may pull through them', () => {
    const config = sampleConfig();
    const withCache = {
      ...config,
      pullThroughCache: [
        { prefix: 'ecr-public', upstream: 'ecr-public' as const },
        {
          prefix: 'docker-hub',
          upstream: 'docker-hub' as const,
          credentialSecretName: 'ecr-pullthroughcache/docker-hub',
        },
      ],
    };
    const { app, stacks } = buildApp(withCache, { nag: true });
    expect(() => app.synth()).not.toThrow();
    const shared = Template.fromStack(stacks.shared);
    shared.resourceCountIs('AWS::ECR::PullThroughCacheRule', 2);
    shared.hasResourceProperties('AWS::ECR::PullThroughCacheRule', {
      EcrRepositoryPrefix: 'docker-hub',
      UpstreamRegistry: 'docker-hub',
    });
    const build = Template.fromStack(stacks.repositories[0] as RepositoryStack);
    build.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(['ecr:BatchImportUpstreamImage']),
            Resource: Match.arrayWith([
              Match.objectLike({
                'Fn::Join': Match.arrayWith([Match.arrayWith([':repository/docker-hub/*'])]),
              }),
            ]),
          }),
        ]),
      },
    });
  });

  test('GIVEN a config with mistakes WHEN cdk synth runs THEN it exits non-zero with one line per mistake and no stack trace', () => {
    let stderr = '';
    let status = 0;
    try {
      execFileSync(
        'npx',
        [
          'cdk',
          'synth',
          '--quiet',
          '-o',
          join(ROOT, 'cdk.out.test'),
          '-c',
          'config=test/fixtures/config/mistakes.yaml',
        ],
        {
          cwd: ROOT,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
    } catch (err) {
      const failure = err as { status: number; stderr: string };
      status = failure.status;
      stderr = failure.stderr;
    }
    expect(status).not.toBe(0);
    const problemLines = stderr.split('\n').filter((line) => line.startsWith('  - '));
    expect(problemLines.length).toBeGreaterThanOrEqual(7);
    expect(stderr).toContain('webhook.allowedCidrs[1]');
    expect(stderr).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$/m);
  });
});
