import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../../lib/config/load';
import { buildApp, ROOT } from '../support/app';
import { invokeBundle } from '../webhook/bundle';

/**
 * The validation hook exactly as it ships (the esbuild bundle of the synthesized staging stack),
 * run in a fresh node process against a local application and a local CodeDeploy endpoint
 * (`AWS_ENDPOINT_URL_CODEDEPLOY`) that records what the function reports.
 */
function hookBundle(): string {
  const { app, stacks } = buildApp(loadConfig(join(ROOT, 'test', 'fixtures', 'config', 'environments.yaml')));
  const assembly = app.synth();
  const staging = stacks.services[0];
  if (!staging) throw new Error('no staging stack');
  const template = assembly.getStackByName(staging.stackName).template as {
    Resources: Record<string, { Type: string; Properties: { Code?: { S3Key?: string } } }>;
  };
  const [, hook] =
    Object.entries(template.Resources).find(
      ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith('Validation'),
    ) ?? [];
  const key = hook?.Properties.Code?.S3Key;
  if (!key) throw new Error('no validation function');
  return join(assembly.directory, `asset.${key.replace(/\.zip$/, '')}`, 'index.js');
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const body = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let text = '';
    req.on('data', (chunk) => {
      text += chunk;
    });
    req.on('end', () => resolve(text));
  });

const reports: { target: string | undefined; body: Record<string, unknown> }[] = [];
const application = createServer((req, res) => res.writeHead(req.url === '/health' ? 200 : 500).end());
const codedeploy = createServer(async (req, res) => {
  reports.push({
    target: req.headers['x-amz-target'] as string | undefined,
    body: JSON.parse(await body(req)),
  });
  res
    .writeHead(200, { 'content-type': 'application/x-amz-json-1.1' })
    .end('{"lifecycleEventHookExecutionId":"x"}');
});
let applicationUrl: string;
let codedeployUrl: string;
let bundle: string;

beforeAll(async () => {
  applicationUrl = await listen(application);
  codedeployUrl = await listen(codedeploy);
  bundle = hookBundle();
}, 120_000);
afterAll(() => {
  application.close();
  codedeploy.close();
});

test.each([
  ['/health', 'Succeeded', 'answered 200'],
  ['/broken', 'Failed', 'answered 500'],
])(
  'GIVEN the new version at %s WHEN CodeDeploy invokes the bundled hook THEN it reports %s and logs what it called',
  async (path, status, answer) => {
    reports.length = 0;
    const event = { DeploymentId: 'd-ABCDEF123', LifecycleEventHookExecutionId: 'hook-execution-1' };
    const { results, logLines } = await invokeBundle(
      bundle,
      {
        TEST_URL: `${applicationUrl}${path}`,
        EXPECT_STATUS: '200',
        TIMEOUT_MS: '2000',
        AWS_ENDPOINT_URL_CODEDEPLOY: codedeployUrl,
        AWS_REGION: 'ap-northeast-1',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
      },
      [event],
    );
    expect(results).toEqual([{ status }]);
    expect(reports).toEqual([
      {
        target: 'CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus',
        body: { deploymentId: 'd-ABCDEF123', lifecycleEventHookExecutionId: 'hook-execution-1', status },
      },
    ]);
    expect(logLines.join('\n')).toContain(`GET ${applicationUrl}${path} (expecting 200): ${answer}`);
  },
);
