import { join } from 'node:path';
import type { CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { loadConfig } from '../lib/config/load';
import type { PipelineRegionStack } from '../lib/pipeline-region-stack';
import { deployTemplateParameterName, pipelineRegionStackName } from '../lib/resource-names';
import { buildApp, ROOT } from './support/app';
import { problemsOf } from './support/config';
import {
  onlyResource,
  type PolicyDocument,
  resolveIntrinsics,
  simulate,
  type TemplateJson,
} from './support/iam-simulation';

const PIPELINE_ACCOUNT = '111122223333';
const TARGET_ACCOUNT = '444455556666';
const THIRD_ACCOUNT = '777788889999';
const HOME = 'ap-northeast-1';
const AWAY = 'eu-west-1';
const NO_POLICY: PolicyDocument = { Version: '2012-10-17', Statement: [] };

const fixture = (name: string) => join(ROOT, 'test', 'fixtures', 'config', name);

type Resource = { Type: string; Properties?: Record<string, unknown> };
type ArtifactStores = {
  Region: string;
  ArtifactStore: { Location: unknown; EncryptionKey?: { Id: unknown; Type: string } };
}[];
type Stage = {
  Name: string;
  Actions: { Name: string; Region?: string; RoleArn?: unknown; Configuration?: Record<string, unknown> }[];
};

function resources(template: TemplateJson, type: string): [string, Resource][] {
  return Object.entries(template.Resources ?? {}).filter(([, r]) => r.Type === type);
}

/** The identity policy CDK attaches to a role (its `DefaultPolicy`), as deployed to the stack's account and region. */
function identityPolicyOf(stack: Stack, role: { node: { defaultChild?: unknown } }): PolicyDocument {
  const roleId = stack.getLogicalId(role.node.defaultChild as CfnElement);
  const template = Template.fromStack(stack).toJSON() as TemplateJson;
  const policy = resources(template, 'AWS::IAM::Policy').find(([, r]) =>
    JSON.stringify(r.Properties?.Roles).includes(roleId),
  )?.[1].Properties?.PolicyDocument;
  return resolveIntrinsics(policy, deployedAt(template, stack.account, stack.region)) as PolicyDocument;
}

/** An object of the deploy artifact in the store named `bucketName`. */
function artifactObject(bucketName: unknown): { arn: string; account: string } {
  return { arn: `arn:aws:s3:::${String(bucketName)}/DeployArtifact/abc`, account: PIPELINE_ACCOUNT };
}

/** Where a template is imagined deployed, with made-up values for its own resources. */
function deployedAt(template: TemplateJson, account: string, region: string) {
  return {
    partition: 'aws',
    region,
    account,
    refs: Object.fromEntries(Object.keys(template.Resources ?? {}).map((id) => [id, `ref-${id}`])),
    // A bucket with a physical name has that name in its ARN.
    attributes: Object.fromEntries(
      Object.entries(template.Resources ?? {}).map(([id, r]) => [
        `${id}.Arn`,
        `arn:aws:s3:::${typeof r.Properties?.BucketName === 'string' ? r.Properties.BucketName : id.toLowerCase()}`,
      ]),
    ),
  };
}

/** The cross-region stacks of one repository, as the app makes them. */
function crossRegionApp(file: string, nag = false) {
  const { app, stacks } = buildApp(loadConfig(fixture(file)), { nag });
  const [staging, production] = stacks.services;
  const pipelineStack = stacks.pipelines[0];
  const regionStack = app.node.tryFindChild(
    pipelineRegionStackName('pushline', { name: 'shop/api' }, AWAY),
  ) as PipelineRegionStack | undefined;
  if (!staging || !production || !pipelineStack || !regionStack) throw new Error('stacks missing');
  const pipelineTemplate = Template.fromStack(pipelineStack).toJSON() as TemplateJson;
  const pipeline = onlyResource(pipelineTemplate, 'AWS::CodePipeline::Pipeline').properties as {
    ArtifactStores?: ArtifactStores;
    Stages: Stage[];
  };
  const regionTemplate = Template.fromStack(regionStack).toJSON() as TemplateJson;
  const awayStoreName = resources(regionTemplate, 'AWS::S3::Bucket')
    .map(([, r]) => r.Properties?.BucketName)
    .find((name) => typeof name === 'string');
  return {
    app,
    stacks,
    staging,
    production,
    pipelineStack,
    regionStack,
    pipeline,
    regionTemplate,
    awayStoreName,
  };
}

/** A request from a role of an account nothing here names. */
function asThirdAccount(policy: PolicyDocument, action: string, resource: { arn: string; account: string }) {
  return simulate(policy, { principal: `arn:aws:iam::${THIRD_ACCOUNT}:role/anyone`, action, resource });
}

/** The store's bucket policy, resolved as CloudFormation would in `account`, `region`. */
function storePolicy(regionTemplate: TemplateJson, account: string, replace: (value: unknown) => unknown) {
  const bucketPolicy = resources(regionTemplate, 'AWS::S3::BucketPolicy').find(([id]) =>
    id.startsWith('ArtifactStorePolicy'),
  )?.[1].Properties?.PolicyDocument;
  return resolveIntrinsics(
    replace(bucketPolicy),
    deployedAt(regionTemplate, account, AWAY),
  ) as PolicyDocument;
}

/** A config whose production environment carries `production` (one YAML line), with or without env. */
function configWithProduction(production: string, env: boolean): string {
  return [
    ...(env ? [`env: { account: "${PIPELINE_ACCOUNT}", region: ${HOME} }`] : []),
    'webhook: { allowedCidrs: [github-hooks] }',
    'repositories:',
    '  - name: shop/api',
    '    source: { provider: github, repository: example-org/shop-api, cloneUrl: "git@github.com:example-org/shop-api.git" }',
    '    deploy:',
    '      containerPort: 8080',
    '      environments:',
    '        - name: staging',
    '        - name: production',
    `          ${production}`,
  ].join('\n');
}

describe('an environment in another region, in the config', () => {
  test('GIVEN an environment with a region but no env THEN the validator asks for the installation’s account and region', () => {
    expect(problemsOf(configWithProduction(`region: ${AWAY}`, false))).toContainEqual(
      expect.stringMatching(
        /^repositories\[0\]\.deploy\.environments\[1\]\.region: an environment in another region needs env\.account and env\.region of the installation: .*\(got "eu-west-1"\)$/,
      ),
    );
  });

  test('GIVEN a region that is not an AWS region THEN the validator names the field and what is valid', () => {
    expect(problemsOf(configWithProduction('region: Europe', true))).toContainEqual(
      expect.stringMatching(
        /^repositories\[0\]\.deploy\.environments\[1\]\.region: must be an AWS region such as ap-northeast-1/,
      ),
    );
  });
});

describe('production in another region of the pipeline’s account (staging here, approval, validation)', () => {
  const built = crossRegionApp('environments-cross-region.yaml');
  const { staging, production, pipelineStack, regionStack, pipeline, regionTemplate, awayStoreName } = built;

  test('WHEN synthesized with cdk-nag THEN no rule fails in any stack', () => {
    const { app } = crossRegionApp('environments-cross-region.yaml', true);
    expect(() => app.synth()).not.toThrow();
  });

  test('THEN production’s service and the pipeline’s store there are in that region, and deploy before the pipeline', () => {
    expect(
      [staging, production, pipelineStack, regionStack].map((s) => `${s.stackName} ${s.account}/${s.region}`),
    ).toEqual([
      `pushline-service-shop-api-staging ${PIPELINE_ACCOUNT}/${HOME}`,
      `pushline-service-shop-api-production ${PIPELINE_ACCOUNT}/${AWAY}`,
      `pushline-pipeline-shop-api ${PIPELINE_ACCOUNT}/${HOME}`,
      `pushline-pipeline-shop-api-${AWAY} ${PIPELINE_ACCOUNT}/${AWAY}`,
    ]);
    expect(regionStack.dependencies).toContain(production);
    expect(pipelineStack.dependencies).toEqual(expect.arrayContaining([staging, production, regionStack]));
  });

  test('THEN the pipeline keeps an artifact store in each region, the one away named by the store’s stack', () => {
    const stores = pipeline.ArtifactStores ?? [];
    expect(stores.map((s) => s.Region).sort()).toEqual([HOME, AWAY]);
    expect(typeof awayStoreName).toBe('string');
    expect(stores.find((s) => s.Region === AWAY)?.ArtifactStore).toEqual({
      Location: awayStoreName,
      Type: 'S3',
    });
  });

  test('THEN production’s deploy action runs in its region, as a role made next to its service', () => {
    const role = production.pipelineDeployRole;
    if (!role) throw new Error('no deploy role');
    const action = pipeline.Stages.find((s) => s.Name === 'Deploy-production')?.Actions.find(
      (a) => a.Name === 'BlueGreen',
    );
    expect(action?.Region).toBe(AWAY);
    expect(action?.RoleArn).toEqual(pipelineStack.resolve(role.roleArn));
    // Names written as text: a reference to the other region's stack could not be resolved.
    expect(action?.Configuration).toEqual(
      expect.objectContaining({
        ApplicationName: expect.stringMatching(/^pushline-service-shop-api/),
        DeploymentGroupName: expect.stringMatching(/^pushline-service-shop-api/),
      }),
    );
    expect(staging.pipelineDeployRole).toBeUndefined();
    expect(
      pipeline.Stages.find((s) => s.Name === 'Deploy-staging')?.Actions.find((a) => a.Name === 'BlueGreen')
        ?.Region,
    ).toBeUndefined();
  });

  test('THEN the build finds production’s templates in its own region, with production’s log region', () => {
    const parameters = resources(
      Template.fromStack(pipelineStack).toJSON() as TemplateJson,
      'AWS::SSM::Parameter',
    ).map(([, r]) => r.Properties as { Name: string; Value: unknown });
    const taskdef = parameters.find(
      (p) =>
        p.Name === deployTemplateParameterName('pushline', { name: 'shop/api' }, 'taskdef', 'production'),
    );
    expect(JSON.stringify(taskdef?.Value)).toContain(`\\"awslogs-region\\": \\"${AWAY}\\"`);
    Template.fromStack(production).resourceCountIs('AWS::SSM::Parameter', 0);
    Template.fromStack(staging).resourceCountIs('AWS::SSM::Parameter', 2);
  });

  test('THEN, evaluated as IAM would, production’s deploy role may read the store in its region and another role of the account may not', async () => {
    const role = production.pipelineDeployRole;
    if (!role) throw new Error('no deploy role');
    const roleArn = `arn:aws:iam::${PIPELINE_ACCOUNT}:role/production-deploy`;
    // The store's policy imports the role's ARN from production's stack, which exports it.
    const imports: unknown[] = [];
    const policy = storePolicy(
      regionTemplate,
      PIPELINE_ACCOUNT,
      function substitute(value: unknown): unknown {
        if (Array.isArray(value)) return value.map(substitute);
        if (value === null || typeof value !== 'object') return value;
        const imported = (value as Record<string, unknown>)['Fn::ImportValue'];
        if (imported !== undefined) {
          imports.push(imported);
          return roleArn;
        }
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v)]));
      },
    );
    expect(imports.map(String)).toEqual([
      expect.stringMatching(/^pushline-service-shop-api-production:.*PipelineDeployRole/),
    ]);
    const object = artifactObject(awayStoreName);
    const identityPolicy = identityPolicyOf(production, role);
    expect(
      await simulate(policy, {
        principal: roleArn,
        action: 's3:GetObject',
        resource: object,
        identityPolicy,
      }),
    ).toBe('Allowed');
    expect(
      await simulate(policy, {
        principal: `arn:aws:iam::${PIPELINE_ACCOUNT}:role/another-role`,
        action: 's3:GetObject',
        resource: object,
        identityPolicy: NO_POLICY,
      }),
    ).toBe('ImplicitlyDenied');
  });

  test('THEN, evaluated as IAM would, production’s tasks pull the image from the repository in the pipeline’s region, and no other repository', async () => {
    const executionRole = production.service.executionRole;
    const identityPolicy = identityPolicyOf(production, executionRole);
    const pull = (arn: string) =>
      simulate(NO_POLICY, {
        principal: `arn:aws:iam::${PIPELINE_ACCOUNT}:role/production-execution`,
        action: 'ecr:BatchGetImage',
        resource: { arn, account: PIPELINE_ACCOUNT },
        identityPolicy,
      });
    expect(await pull(`arn:aws:ecr:${HOME}:${PIPELINE_ACCOUNT}:repository/shop/api`)).toBe('Allowed');
    expect(await pull(`arn:aws:ecr:${AWAY}:${PIPELINE_ACCOUNT}:repository/shop/api`)).toBe(
      'ImplicitlyDenied',
    );
    expect(await pull(`arn:aws:ecr:${HOME}:${PIPELINE_ACCOUNT}:repository/shop/web`)).toBe(
      'ImplicitlyDenied',
    );
  });

  test('THEN the topic is told of failed staging deployments only: production’s CodeDeploy events stay in its region, and its failed deploy action fails the announced run', () => {
    const rules = resources(
      Template.fromStack(pipelineStack).toJSON() as TemplateJson,
      'AWS::Events::Rule',
    ).map(([, r]) => JSON.stringify(r.Properties?.EventPattern));
    const codedeploy = rules.filter((pattern) => pattern.includes('aws.codedeploy'));
    expect(codedeploy).toHaveLength(1);
    expect(codedeploy[0]).toContain(staging.stackName);
    expect(rules.some((pattern) => pattern.includes('"FAILED"'))).toBe(true);
  });
});

describe('production in another account and another region (staging here, approval)', () => {
  const { production, pipelineStack, regionStack, pipeline, regionTemplate, awayStoreName, stacks } =
    crossRegionApp('environments-cross-account-region.yaml');
  const aliasName = `alias/pushline-pipeline-shop-api-${AWAY}/artifact-store`;
  const keyPolicy = resolveIntrinsics(
    onlyResource(regionTemplate, 'AWS::KMS::Key').properties.KeyPolicy,
    deployedAt(regionTemplate, PIPELINE_ACCOUNT, AWAY),
  ) as PolicyDocument;

  test('WHEN synthesized with cdk-nag THEN no rule fails in any stack', () => {
    const { app } = crossRegionApp('environments-cross-account-region.yaml', true);
    expect(() => app.synth()).not.toThrow();
  });

  test('THEN the store away is in the pipeline’s account, encrypted with a key the pipeline names by alias; the home store needs none', () => {
    expect(`${regionStack.account}/${regionStack.region}`).toBe(`${PIPELINE_ACCOUNT}/${AWAY}`);
    expect(`${production.account}/${production.region}`).toBe(`${TARGET_ACCOUNT}/${AWAY}`);
    const stores = pipeline.ArtifactStores ?? [];
    expect(stores.find((s) => s.Region === AWAY)?.ArtifactStore).toEqual({
      Location: awayStoreName,
      Type: 'S3',
      EncryptionKey: {
        Type: 'KMS',
        Id: {
          'Fn::Join': [
            '',
            ['arn:', { Ref: 'AWS::Partition' }, `:kms:${AWAY}:${PIPELINE_ACCOUNT}:${aliasName}`],
          ],
        },
      },
    });
    expect(stores.find((s) => s.Region === HOME)?.ArtifactStore.EncryptionKey).toBeUndefined();
    expect(resources(regionTemplate, 'AWS::KMS::Alias').map(([, r]) => r.Properties?.AliasName)).toEqual([
      aliasName,
    ]);
  });

  test('THEN, evaluated as IAM would, the pipeline may encrypt with the store’s key away and with no other key there', async () => {
    const identityPolicy = identityPolicyOf(pipelineStack, pipelineStack.pipeline.pipeline.role);
    // The key policy lets the account's IAM policies decide, as every key CDK makes.
    const generate = (aliases: string[]) =>
      simulate(keyPolicy, {
        principal: `arn:aws:iam::${PIPELINE_ACCOUNT}:role/pipeline`,
        action: 'kms:GenerateDataKey',
        resource: { arn: `arn:aws:kms:${AWAY}:${PIPELINE_ACCOUNT}:key/1234abcd`, account: PIPELINE_ACCOUNT },
        identityPolicy,
        context: { 'kms:ResourceAliases': aliases },
      });
    expect(await generate([aliasName])).toBe('Allowed');
    expect(await generate(['alias/someone-elses-key'])).toBe('ImplicitlyDenied');
  });

  test('THEN, evaluated as IAM would, production’s deploy role may read the store away and decrypt with its key, and a third account may do neither', async () => {
    const role = production.pipelineDeployRole;
    if (!role) throw new Error('no deploy role');
    const roleArn = String(
      resolveIntrinsics(regionStack.resolve(role.roleArn), deployedAt({}, PIPELINE_ACCOUNT, AWAY)),
    );
    expect(roleArn).toMatch(new RegExp(`^arn:aws:iam::${TARGET_ACCOUNT}:role/`));
    const policy = storePolicy(regionTemplate, PIPELINE_ACCOUNT, (value) => value);
    const identityPolicy = identityPolicyOf(production, role);
    const object = artifactObject(awayStoreName);
    expect(
      await simulate(policy, {
        principal: roleArn,
        action: 's3:GetObject',
        resource: object,
        identityPolicy,
        context: { 'aws:ResourceAccount': PIPELINE_ACCOUNT },
      }),
    ).toBe('Allowed');
    expect(await asThirdAccount(policy, 's3:GetObject', object)).toBe('ImplicitlyDenied');

    const key = { arn: `arn:aws:kms:${AWAY}:${PIPELINE_ACCOUNT}:key/1234abcd`, account: PIPELINE_ACCOUNT };
    expect(
      await simulate(keyPolicy, {
        principal: roleArn,
        action: 'kms:Decrypt',
        resource: key,
        identityPolicy,
        context: { 'aws:ResourceAccount': PIPELINE_ACCOUNT, 'kms:ViaService': `s3.${AWAY}.amazonaws.com` },
      }),
    ).toBe('Allowed');
    expect(await asThirdAccount(keyPolicy, 'kms:Decrypt', key)).toBe('ImplicitlyDenied');
  });

  test('THEN, evaluated as IAM would, production’s execution role may pull from the repository in the pipeline’s account and region, and a third account may not', async () => {
    const repositoryStack = stacks.repositories[0];
    if (!repositoryStack) throw new Error('no repository stack');
    const repositoryTemplate = Template.fromStack(repositoryStack).toJSON() as TemplateJson;
    const target = deployedAt(repositoryTemplate, PIPELINE_ACCOUNT, HOME);
    const policy = resolveIntrinsics(
      onlyResource(repositoryTemplate, 'AWS::ECR::Repository').properties.RepositoryPolicyText,
      target,
    ) as PolicyDocument;
    const executionRole = production.service.executionRole;
    const executionRoleArn = String(
      resolveIntrinsics(repositoryStack.resolve(executionRole.roleArn), target),
    );
    expect(executionRoleArn).toMatch(new RegExp(`^arn:aws:iam::${TARGET_ACCOUNT}:role/`));
    const identityPolicy = identityPolicyOf(production, executionRole);
    const image = {
      arn: `arn:aws:ecr:${HOME}:${PIPELINE_ACCOUNT}:repository/shop/api`,
      account: PIPELINE_ACCOUNT,
    };
    // CDK's cross-account grant names the account, narrowed to the role by the aws-cdk:id tag it puts on it.
    const tag = (
      Template.fromStack(production).toJSON().Resources[
        production.getLogicalId(executionRole.node.defaultChild as CfnElement)
      ].Properties.Tags as { Key: string; Value: string }[]
    ).find((t) => t.Key === 'aws-cdk:id')?.Value;
    expect(
      await simulate(policy, {
        principal: executionRoleArn,
        action: 'ecr:BatchGetImage',
        resource: image,
        identityPolicy,
        context: { 'aws:PrincipalTag/aws-cdk:id': String(tag) },
      }),
    ).toBe('Allowed');
    expect(await asThirdAccount(policy, 'ecr:BatchGetImage', image)).toBe('ImplicitlyDenied');
  });
});
