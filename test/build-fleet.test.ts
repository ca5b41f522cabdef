import { Template } from 'aws-cdk-lib/assertions';
import { parseConfig } from '../lib/config/load';
import { repositoryStackName } from '../lib/resource-names';
import { buildApp } from './support/app';
import { problemsOf } from './support/config';

/**
 * `fleets` and `build.fleet`: reserved capacity defined once per installation and shared by the
 * repositories that name it; `build.arch: arm64`: native Graviton builds.
 */

const HEAD = `webhook:
  allowedCidrs: [github-hooks]
`;

function repo(name: string, build?: string, docker?: string): string {
  return [
    `  - name: ${name}`,
    '    source:',
    '      provider: github',
    `      repository: example/${name}`,
    `      cloneUrl: git@github.com:example/${name}.git`,
    ...(docker ? [`    docker: ${docker}`] : []),
    ...(build ? [`    build: ${build}`] : []),
  ].join('\n');
}

function config(fleets: string, ...repositories: string[]): string {
  return `${HEAD}${fleets}repositories:\n${repositories.join('\n')}\n`;
}

const SHARED_FLEET = config(
  'fleets:\n  builders: { baseCapacity: 3, computeType: large, overflow: on-demand }\n',
  repo('api', '{ fleet: builders }'),
  repo('web', '{ fleet: builders }'),
  repo('batch'),
);

function projectEnvironment(template: Template): Record<string, unknown> {
  const [project] = Object.values(template.findResources('AWS::CodeBuild::Project'));
  if (!project) throw new Error('expected a CodeBuild project');
  return (project.Properties as { Environment: Record<string, unknown> }).Environment;
}

describe('GIVEN a fleet named by two repositories and a third on demand', () => {
  const { app, stacks } = buildApp(parseConfig(SHARED_FLEET), { nag: true });
  const repositoryTemplate = (name: string) => {
    const stack = stacks.repositories.find((s) => s.node.id === repositoryStackName('pushline', { name }));
    if (!stack) throw new Error(`no stack for ${name}`);
    return Template.fromStack(stack);
  };

  test('WHEN synthesized with cdk-nag THEN no finding is left unacknowledged', () => {
    expect(() => app.synth()).not.toThrow();
  });

  test('THEN the shared stack holds the one fleet, with base capacity, compute type and overflow from the config', () => {
    const shared = Template.fromStack(stacks.shared);
    shared.resourceCountIs('AWS::CodeBuild::Fleet', 1);
    shared.hasResourceProperties('AWS::CodeBuild::Fleet', {
      Name: 'pushline-builders',
      BaseCapacity: 3,
      ComputeType: 'BUILD_GENERAL1_LARGE',
      EnvironmentType: 'LINUX_CONTAINER',
      OverflowBehavior: 'ON_DEMAND',
    });
    for (const stack of stacks.repositories)
      Template.fromStack(stack).resourceCountIs('AWS::CodeBuild::Fleet', 0);
  });

  test('THEN both naming repositories build on that fleet, with its compute type', () => {
    const fleetLogicalId = stacks.shared.getLogicalId(
      stacks.shared.fleets.get('builders')?.node.defaultChild as never,
    );
    for (const name of ['api', 'web']) {
      const environment = projectEnvironment(repositoryTemplate(name));
      expect(environment.ComputeType).toBe('BUILD_GENERAL1_LARGE');
      expect(JSON.stringify(environment.Fleet)).toContain(fleetLogicalId);
    }
  });

  test('THEN the repository naming no fleet stays on demand', () => {
    const environment = projectEnvironment(repositoryTemplate('batch'));
    expect(environment.Fleet).toBeUndefined();
    expect(environment.ComputeType).toBe('BUILD_GENERAL1_SMALL');
  });
});

describe('GIVEN build.arch: arm64', () => {
  test('WHEN on an arm64 fleet THEN the fleet is an ARM container fleet and the project runs the ARM image on it', () => {
    const text = config(
      'fleets:\n  graviton: { baseCapacity: 1, arch: arm64 }\n',
      repo('api', '{ arch: arm64, fleet: graviton }'),
    );
    const { app, stacks } = buildApp(parseConfig(text), { nag: true });
    expect(() => app.synth()).not.toThrow();
    Template.fromStack(stacks.shared).hasResourceProperties('AWS::CodeBuild::Fleet', {
      EnvironmentType: 'ARM_CONTAINER',
      OverflowBehavior: 'QUEUE',
      ComputeType: 'BUILD_GENERAL1_SMALL',
    });
    const [stack] = stacks.repositories;
    if (!stack) throw new Error('no repository stack');
    expect(projectEnvironment(Template.fromStack(stack))).toMatchObject({
      Type: 'ARM_CONTAINER',
      Image: 'aws/codebuild/amazonlinux-aarch64-standard:3.0',
      Fleet: { FleetArn: { 'Fn::ImportValue': expect.stringContaining('Fleetgraviton') } },
      PrivilegedMode: true,
    });
  });

  test('WHEN on demand with a deploy section and no platforms THEN the build is ARM and the ECS tasks run ARM64', () => {
    const text = `${config('', repo('api', '{ arch: arm64, computeType: large }'))}    deploy: { containerPort: 8080 }\n`;
    const { stacks } = buildApp(parseConfig(text));
    const [stack] = stacks.repositories;
    const [service] = stacks.services;
    if (!stack || !service) throw new Error('no stacks');
    expect(projectEnvironment(Template.fromStack(stack))).toMatchObject({
      Type: 'ARM_CONTAINER',
      ComputeType: 'BUILD_GENERAL1_LARGE',
    });
    expect(projectEnvironment(Template.fromStack(stack)).Fleet).toBeUndefined();
    Template.fromStack(service).hasResourceProperties('AWS::ECS::TaskDefinition', {
      RuntimePlatform: { CpuArchitecture: 'ARM64' },
    });
  });

  test('WHEN left out THEN the build is the x86 Linux container it always was', () => {
    const { stacks } = buildApp(parseConfig(config('', repo('api'))));
    const [stack] = stacks.repositories;
    if (!stack) throw new Error('no repository stack');
    expect(projectEnvironment(Template.fromStack(stack))).toMatchObject({
      Type: 'LINUX_CONTAINER',
      Image: 'aws/codebuild/standard:7.0',
    });
  });
});

describe('GIVEN a mistake in fleets or build.arch WHEN the config loads THEN the problem names the field, the value and what is valid', () => {
  test('a build.fleet that names no fleet', () => {
    const problems = problemsOf(
      config('fleets:\n  builders: { baseCapacity: 1 }\n', repo('api', '{ fleet: bulders }')),
    );
    expect(problems).toEqual([
      'repositories[0].build.fleet: names no fleet of fleets (there are builders) (got "bulders")',
    ]);
  });

  test('a build.fleet without any fleets', () => {
    expect(problemsOf(config('', repo('api', '{ fleet: builders }')))).toEqual([
      'repositories[0].build.fleet: names no fleet of fleets (there is none: define it under fleets) (got "builders")',
    ]);
  });

  test('a repository whose arch differs from its fleet', () => {
    const problems = problemsOf(
      config('fleets:\n  graviton: { baseCapacity: 1, arch: arm64 }\n', repo('api', '{ fleet: graviton }')),
    );
    expect(problems).toEqual([
      'repositories[0].build.arch: builds on amd64 (the default) but fleet graviton runs arm64 instances (a project and its fleet share one environment type); set build.arch: arm64 or name an amd64 fleet (missing)',
    ]);
  });

  test('a computeType the fleet would override', () => {
    const problems = problemsOf(
      config(
        'fleets:\n  builders: { baseCapacity: 1, computeType: large }\n',
        repo('api', '{ fleet: builders, computeType: xlarge }'),
      ),
    );
    expect(problems).toEqual([
      'repositories[0].build.computeType: would be ignored: builds on fleet builders run on its large instances; leave computeType out or set the fleet\'s computeType (got "xlarge")',
    ]);
  });

  test('a base capacity below one or not whole', () => {
    const problems = problemsOf(
      config(
        'fleets:\n  none: { baseCapacity: 0 }\n  half: { baseCapacity: 1.5 }\n',
        repo('api', '{ fleet: none }'),
      ),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^fleets\.none\.baseCapacity: must be at least 1 .*\(got 0\)$/),
      expect.stringMatching(
        /^fleets\.half\.baseCapacity: must be a whole number of instances .*\(got 1\.5\)$/,
      ),
    ]);
  });

  test('a fleet compute type, arch or overflow CodeBuild does not have', () => {
    const problems = problemsOf(
      config(
        'fleets:\n  odd: { baseCapacity: 1, computeType: huge, arch: riscv64, overflow: drop }\n',
        repo('api'),
      ),
    );
    expect(problems).toEqual([
      'fleets.odd.computeType: must be one of small, medium, large, xlarge, 2xlarge (got "huge")',
      'fleets.odd.arch: must be amd64 or arm64 (got "riscv64")',
      'fleets.odd.overflow: must be queue or on-demand (got "drop")',
    ]);
  });

  test('fleets in a region without reserved capacity', () => {
    const text = `env: { account: "111122223333", region: eu-north-1 }\n${config('fleets:\n  builders: { baseCapacity: 1 }\n', repo('api', '{ fleet: builders }'))}`;
    expect(problemsOf(text)).toEqual([
      expect.stringMatching(
        /^fleets: cannot be created in eu-north-1: CodeBuild has reserved capacity fleets only in us-east-1, .*ap-northeast-1.*; leave fleets out there/,
      ),
    ]);
  });

  test('arch: arm64 for an image only for linux/amd64', () => {
    expect(problemsOf(config('', repo('api', '{ arch: arm64 }', '{ platforms: [linux/amd64] }')))).toEqual([
      expect.stringMatching(
        /^repositories\[0\]\.build\.arch: is arm64 but docker\.platforms is linux\/amd64: an arm64 host would build that image under QEMU emulation.*\(got "arm64"\)$/,
      ),
    ]);
  });

  test('arch: arm64 with both platforms is accepted: one of the two is emulated on either host', () => {
    expect(() =>
      parseConfig(config('', repo('api', '{ arch: arm64 }', '{ platforms: [linux/amd64, linux/arm64] }'))),
    ).not.toThrow();
  });
});
