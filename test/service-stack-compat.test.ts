import { Template } from 'aws-cdk-lib/assertions';
import { parseConfig } from '../lib/config/load';
import { buildApp, sampleConfig } from './support/app';

/**
 * A config without `deploy.environments` must synthesize exactly as before environments existed
 * (and before services shared a VPC: with `network.shared: false`, which installations deployed
 * before keep):
 * the same logical IDs (a renamed one would replace the resource: a new load balancer, a new
 * service) and the same properties. The one snapshot of this project; its diff is the review of any
 * change to a deployed service, so read it before updating it with `npx jest -u`.
 */
const EVERY_SINGLE_ENVIRONMENT_OPTION = parseConfig(`
env: { account: "111122223333", region: ap-northeast-1 }
network: { shared: false }
webhook: { allowedCidrs: [backlog-jp] }
repositories:
  - name: shop/api
    source:
      provider: backlog
      repository: SHOP/api
      cloneUrl: example@example.git.backlog.jp:/SHOP/api.git
    deploy:
      containerPort: 8080
      healthCheckPath: /health
      cpu: 512
      memory: 1024
      desiredCount: 3
      trafficShift: linear-10-1m
      terminationWaitMinutes: 5
      environment: { LOG_LEVEL: info }
      secrets: { DB_PASSWORD: shop/api/db }
      certificateArn: arn:aws:acm:ap-northeast-1:111122223333:certificate/0a1b2c3d-1111-2222-3333-444455556666
      testListenerPort: 9443
      testListenerCidrs: ["203.0.113.0/24"]
      vpc: { maxAzs: 3, natGateways: 2 }
      notificationEmail: ops@example.com
      logRetentionDays: 90
`);

function serviceTemplates(config: ReturnType<typeof sampleConfig>): Record<string, unknown> {
  const { stacks } = buildApp(config);
  return Object.fromEntries(stacks.services.map((s) => [s.stackName, Template.fromStack(s).toJSON()]));
}

describe('a deploy section without environments', () => {
  test('GIVEN the sample config and an every-option single-environment config THEN their service stacks are unchanged', () => {
    expect({
      sample: serviceTemplates({ ...sampleConfig(), network: { shared: false } }),
      everyOption: serviceTemplates(EVERY_SINGLE_ENVIRONMENT_OPTION),
    }).toMatchSnapshot();
  });
});
