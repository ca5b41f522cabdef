import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseConfig } from '../../lib/config/load';
import type { RepositoryConfig } from '../../lib/config/schema';
import { renderAppSpecTemplate, renderTaskDefinitionTemplate } from '../../lib/deploy-templates';
import { artifactKey } from '../../lib/resource-names';
import { TOOL_PATHS } from '../../local/daemons';
import { type Approver, approvalGate } from '../../local/environment-walk';
import { LocalCodePipeline } from '../../local/local-codepipeline';
import { type LocalNotificationTopic, startLocalNotificationTopic } from '../../local/notification-topic';

const PUSHED = '6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const NEWER = '9f4fdbd81c6ea96b0dcea7cef24a2275aab418cd';
const DIGEST = `sha256:${'cd'.repeat(32)}`;

const CONFIG = `name: shop
webhook:
  allowedCidrs: [github-hooks]
repositories:
  - name: shop/web
    source: { provider: github, repository: shop/web, cloneUrl: "git@github.com:shop/web.git" }
    deploy:
      containerPort: 8080
      environments:
        - name: staging
        - name: production
          approval: true
`;

describe('the local deploy pipeline of a repository with staging and production', () => {
  let dir: string;
  let registry: Server;
  let registryHost: string;
  let topic: LocalNotificationTopic;
  const repository = parseConfig(CONFIG).repositories[0] as RepositoryConfig;

  beforeAll(async () => {
    registry = createServer((req, res) => {
      res.writeHead(req.method === 'HEAD' && req.url?.startsWith('/v2/shop/web/manifests/') ? 200 : 404, {
        'docker-content-digest': DIGEST,
      });
      res.end();
    });
    await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
    registryHost = `127.0.0.1:${(registry.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise((resolve) => registry.close(resolve)));
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pushline-local-codepipeline-'));
    topic = await startLocalNotificationTopic();
  });
  afterEach(async () => {
    await topic.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes the artifact as the build script does with ARTIFACT_DIR: the zip and its push record. */
  function writeArtifact(commit: string): void {
    const zip = join(dir, 'artifacts', artifactKey(repository));
    const work = join(dir, 'work');
    mkdirSync(work, { recursive: true });
    mkdirSync(dirname(zip), { recursive: true });
    writeFileSync(join(work, 'imageDetail.json'), `{"ImageURI":"${registryHost}/shop/web:${commit}"}\n`);
    const files = ['imageDetail.json'];
    for (const environment of ['staging', 'production']) {
      const settings = {
        family: `shop-shop-web-${environment}`,
        executionRoleArn: 'arn:aws:iam::111122223333:role/exec',
        taskRoleArn: 'arn:aws:iam::111122223333:role/task',
        containerName: 'app',
        containerPort: 8080,
        cpu: 256,
        memory: 512,
        cpuArchitecture: 'X86_64' as const,
        environment: {},
        secrets: {},
        logGroupName: '/shop/web',
        logRegion: 'us-east-1',
        logStreamPrefix: 'app',
      };
      writeFileSync(
        join(work, `taskdef-${environment}.json`),
        JSON.stringify(renderTaskDefinitionTemplate(settings)),
      );
      writeFileSync(join(work, `appspec-${environment}.yaml`), renderAppSpecTemplate(settings));
      files.push(`taskdef-${environment}.json`, `appspec-${environment}.yaml`);
    }
    rmSync(zip, { force: true });
    execFileSync(TOOL_PATHS.zip, ['-q', '-X', zip, ...files], { cwd: work });
    writeFileSync(`${zip}.push`, `1764108000000 ${commit}\n`);
  }

  function pipeline(approve: Approver) {
    const lines: string[] = [];
    const codepipeline = new LocalCodePipeline({
      installation: 'shop',
      repositories: [repository],
      artifactDir: join(dir, 'artifacts'),
      deploymentsDir: join(dir, 'deployments'),
      approve,
      snsEndpoint: topic.url,
      print: (line) => lines.push(line),
    });
    return { codepipeline, lines };
  }

  test('GIVEN the build wrote the artifact WHEN it succeeds THEN staging is deployed, the approval is published as CodePipeline publishes it, and production gets the same image once approved', async () => {
    writeArtifact(PUSHED);
    const { codepipeline, lines } = pipeline(async () => ({ approved: true, by: '--approve' }));
    codepipeline.buildSucceeded(repository, PUSHED);
    await codepipeline.idle();

    const image = `${registryHost}/shop/web:${PUSHED}`;
    expect(codepipeline.runs).toEqual([
      {
        repository: 'shop/web',
        commitSha: PUSHED,
        result: {
          deployed: [
            { environment: 'staging', image },
            { environment: 'production', image },
          ],
        },
      },
    ]);
    expect(lines.filter((line) => / (deployed|waiting|approved)/.test(line))).toEqual([
      `deploy shop/web staging: deployed ${image} (${DIGEST})`,
      `deploy shop/web production: waiting for approval to deploy ${image}`,
      'deploy shop/web production: approved (--approve)',
      `deploy shop/web production: deployed ${image} (${DIGEST})`,
    ]);
    expect(topic.messages).toHaveLength(1);
    const published = topic.messages[0];
    expect(published?.topicArn).toBe(
      'arn:aws:sns:us-east-1:000000000000:shop-pipeline-shop-web-Notifications',
    );
    // The fields of "JSON data format for manual approval notifications in CodePipeline".
    expect(JSON.parse(published?.message ?? '{}')).toEqual({
      region: 'us-east-1',
      consoleLink: expect.stringContaining('#/view/shop-pipeline-shop-web-local'),
      approval: {
        pipelineName: 'shop-pipeline-shop-web-local',
        stageName: 'Deploy-production',
        actionName: 'Approve',
        token: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
        expires: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\dZ$/),
        approvalReviewLink: expect.stringContaining('/Deploy-production/Approve/approve/'),
        customData: "Deploy this commit's image to production?",
      },
    });
  });

  test('GIVEN no terminal and no --approve THEN staging is deployed, production waits for nothing and is not deployed, and the line says how to approve', async () => {
    writeArtifact(PUSHED);
    const gateLines: string[] = [];
    const { codepipeline, lines } = pipeline(
      approvalGate({
        approveAll: false,
        input: {
          isTTY: false,
          on: () => undefined,
          off: () => undefined,
          resume: () => undefined,
          pause: () => undefined,
        },
        print: (line) => gateLines.push(line),
        onInterrupt: () => undefined,
      }),
    );
    codepipeline.buildSucceeded(repository, PUSHED);
    await codepipeline.idle();
    expect(codepipeline.runs[0]?.result.deployed.map((d) => d.environment)).toEqual(['staging']);
    expect(gateLines[0]).toMatch(/stdin is not a terminal.*npm run local -- --approve/);
    expect(lines.at(-1)).toMatch(
      /^deploy shop\/web production: not approved: no terminal to approve on and no --approve/,
    );
  });

  test('GIVEN the artifact holds a newer push WHEN an older build succeeds THEN nothing is walked', async () => {
    writeArtifact(NEWER);
    const { codepipeline } = pipeline(async () => ({ approved: true, by: '--approve' }));
    codepipeline.buildSucceeded(repository, PUSHED);
    await codepipeline.idle();
    expect(codepipeline.runs).toEqual([]);
  });

  test('GIVEN the same artifact reported twice THEN it is walked once', async () => {
    writeArtifact(PUSHED);
    const { codepipeline } = pipeline(async () => ({ approved: true, by: '--approve' }));
    codepipeline.buildSucceeded(repository, PUSHED);
    codepipeline.buildSucceeded(repository, PUSHED);
    await codepipeline.idle();
    expect(codepipeline.runs).toHaveLength(1);
  });
});
