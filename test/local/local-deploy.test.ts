import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderAppSpecTemplate, renderTaskDefinitionTemplate } from '../../lib/deploy-templates';
import { TOOL_PATHS } from '../../local/daemons';
import { walkEnvironments } from '../../local/environment-walk';
import { localDeployer, readArtifact, registryDigest } from '../../local/local-deploy';

const SHA = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const DIGEST = `sha256:${'ab'.repeat(32)}`;

/** The templates the build writes for one environment, rendered as the service stack renders them. */
function templates(environment: string) {
  const settings = {
    family: `shop-web-${environment}`,
    executionRoleArn: 'arn:aws:iam::111122223333:role/exec',
    taskRoleArn: 'arn:aws:iam::111122223333:role/task',
    containerName: 'web',
    containerPort: 8080,
    cpu: 256,
    memory: 512,
    cpuArchitecture: 'X86_64' as const,
    environment: { STAGE: environment },
    secrets: {},
    logGroupName: `/shop/web/${environment}`,
    logRegion: 'ap-northeast-1',
    logStreamPrefix: 'web',
  };
  return {
    taskdef: JSON.stringify(renderTaskDefinitionTemplate(settings)),
    appspec: renderAppSpecTemplate(settings),
  };
}

describe('the local deploy of one environment', () => {
  let dir: string;
  let registry: Server;
  let registryHost: string;
  const manifestRequests: string[] = [];

  beforeAll(async () => {
    // A registry that holds shop/web:<SHA> only, answering the manifest HEAD as the OCI API does.
    registry = createServer((req, res) => {
      manifestRequests.push(`${req.method} ${req.url}`);
      if (req.method === 'HEAD' && req.url === `/v2/shop/web/manifests/${SHA}`) {
        res.writeHead(200, { 'docker-content-digest': DIGEST });
      } else {
        res.writeHead(404);
      }
      res.end();
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
    registryHost = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => registry.close(resolve));
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pushline-local-deploy-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A deploy.zip laid out as pushline-build.sh writes it: imageDetail.json and a pair per environment. */
  function artifact(image: string, environments: readonly string[]): string {
    const files = ['imageDetail.json'];
    writeFileSync(join(dir, 'imageDetail.json'), `{"ImageURI":"${image}"}\n`);
    for (const environment of environments) {
      const { taskdef, appspec } = templates(environment);
      writeFileSync(join(dir, `taskdef-${environment}.json`), taskdef);
      writeFileSync(join(dir, `appspec-${environment}.yaml`), appspec);
      files.push(`taskdef-${environment}.json`, `appspec-${environment}.yaml`);
    }
    execFileSync(TOOL_PATHS.zip, ['-q', '-X', 'deploy.zip', ...files], { cwd: dir });
    return join(dir, 'deploy.zip');
  }

  /** Walks staging, then production behind an approval given by --approve, from such an artifact. */
  async function walkArtifact(image: string, outDir: string) {
    const files = readArtifact(artifact(image, ['staging', 'production']));
    const lines: string[] = [];
    const result = await walkEnvironments({
      repository: 'shop/web',
      environments: [
        { name: 'staging', approval: false },
        { name: 'production', approval: true },
      ],
      image,
      approve: async () => ({ approved: true, by: '--approve' }),
      announceApproval: async () => undefined,
      deploy: localDeployer({ files, outDir, digestOf: registryDigest, revisions: new Map() }),
      print: (line) => lines.push(line),
    });
    return { result, lines };
  }

  test('GIVEN an artifact with staging and production WHEN walked THEN both get the same image and digest, each its own task definition and AppSpec', async () => {
    const image = `${registryHost}/shop/web:${SHA}`;
    const outDir = join(dir, 'deployments');
    const { result, lines } = await walkArtifact(image, outDir);

    expect(result.deployed).toEqual([
      { environment: 'staging', image },
      { environment: 'production', image },
    ]);
    for (const environment of ['staging', 'production']) {
      expect(lines).toContainEqual(
        expect.stringMatching(
          new RegExp(`^deploy shop/web ${environment}: deployed ${image} \\(${DIGEST}\\)$`),
        ),
      );
      expect(lines).toContain(
        `deploy shop/web ${environment}: task definition shop-web-${environment}:1 and its AppSpec rendered in ${join(outDir, environment)}; no container started, no traffic moved (pushline local has no ECS)`,
      );
      const taskdef = JSON.parse(readFileSync(join(outDir, environment, 'taskdef.json'), 'utf8'));
      expect(taskdef.family).toBe(`shop-web-${environment}`);
      expect(taskdef.containerDefinitions[0].image).toBe(image);
      expect(taskdef.containerDefinitions[0].environment).toEqual([{ name: 'STAGE', value: environment }]);
      expect(readFileSync(join(outDir, environment, 'appspec.yaml'), 'utf8')).toContain(
        `TaskDefinition: "arn:aws:ecs:us-east-1:000000000000:task-definition/shop-web-${environment}:1"`,
      );
    }
  });

  test('GIVEN the image is not in the registry THEN staging fails to deploy, naming the answer, and production is not touched', async () => {
    const image = `${registryHost}/shop/web:${'0'.repeat(40)}`;
    const { result, lines } = await walkArtifact(image, join(dir, 'out'));
    expect(result).toEqual({
      deployed: [],
      stopped: { environment: 'staging', reason: `the registry answers 404 for ${image}` },
    });
    expect(lines).toEqual([
      `deploy shop/web staging: deploy failed: the registry answers 404 for ${image}; not deploying production`,
    ]);
  });

  test('GIVEN an artifact without the environment’s templates THEN its deploy fails, naming the missing files', async () => {
    const image = `${registryHost}/shop/web:${SHA}`;
    const files = readArtifact(artifact(image, ['staging']));
    const deploy = localDeployer({
      files,
      outDir: join(dir, 'out'),
      digestOf: registryDigest,
      revisions: new Map(),
    });
    expect(await deploy({ name: 'production', approval: false })).toEqual({
      ok: false,
      reason: 'the artifact has no taskdef-production.json and appspec-production.yaml',
    });
  });

  test('GIVEN two deploys of one family THEN each registers the next revision', async () => {
    const image = `${registryHost}/shop/web:${SHA}`;
    const files = readArtifact(artifact(image, ['staging']));
    const revisions = new Map<string, number>();
    const deploy = localDeployer({ files, outDir: join(dir, 'out'), digestOf: registryDigest, revisions });
    await deploy({ name: 'staging', approval: false });
    const second = await deploy({ name: 'staging', approval: false });
    expect(second.ok && second.notes?.[0]).toMatch(/^task definition shop-web-staging:2 /);
  });
});
