import { Template } from 'aws-cdk-lib/assertions';
import type { PipelineConfig } from '../lib/config/schema';
import { buildApp, generatedConfig } from './support/app';

/** CloudFormation's hard limit of resources in one stack. */
const STACK_RESOURCE_LIMIT = 500;
/** CloudFormation's hard limit of outputs (exports among them) in one stack. */
const STACK_OUTPUT_LIMIT = 200;

/** The generated 50-repository config, each deployed repository going through staging and production. */
function withTwoEnvironments(config: PipelineConfig): PipelineConfig {
  return {
    ...config,
    repositories: config.repositories.map((repository) =>
      repository.deploy === undefined
        ? repository
        : {
            ...repository,
            deploy: {
              ...repository.deploy,
              environments: [{ name: 'staging' }, { name: 'production', approval: true, desiredCount: 4 }],
            },
          },
    ),
  };
}

test('GIVEN 50 repositories whose deployed ones have staging and production WHEN synthesized THEN every stack stays far below the 500-resource and 200-output limits', () => {
  const { stacks } = buildApp(withTwoEnvironments(generatedConfig(50)));
  const counts = [...stacks.services, ...stacks.pipelines, ...stacks.networks, stacks.shared].map((stack) => {
    const template = Template.fromStack(stack).toJSON();
    return {
      stack: stack.stackName,
      resources: Object.keys(template.Resources ?? {}).length,
      outputs: Object.keys(template.Outputs ?? {}).length,
    };
  });
  const largest = counts.reduce((a, b) => (b.resources > a.resources ? b : a));
  process.stdout.write(
    `50 repositories, ${stacks.pipelines.length} with two environments: largest ${largest.stack} with ${largest.resources} resources\n`,
  );
  expect(stacks.pipelines).toHaveLength(13);
  expect(stacks.services).toHaveLength(26);
  expect(largest.resources).toBeLessThan(STACK_RESOURCE_LIMIT / 2);
  // All 26 services share one network, whose exports every service stack imports.
  expect(stacks.networks.map((n) => n.stackName)).toEqual(['pushline-network']);
  const mostOutputs = counts.reduce((a, b) => (b.outputs > a.outputs ? b : a));
  const network = counts.find((c) => c.stack === 'pushline-network');
  process.stdout.write(
    `most outputs: ${mostOutputs.stack} with ${mostOutputs.outputs}; pushline-network exports ${network?.outputs}, resources ${network?.resources}\n`,
  );
  expect(mostOutputs.outputs).toBeLessThan(STACK_OUTPUT_LIMIT / 4);
});
