import { progressLine } from '../../local/console-output';
import { parseSecrets, USAGE } from '../../local/pushline-local';

describe('pushline local command line', () => {
  test('GIVEN --secret options WHEN parsed THEN each names a secret and its value, which may contain "="', () => {
    expect(parseSecrets(['demo/npm-token=abc', 'b64=YQ=='])).toEqual({
      'demo/npm-token': 'abc',
      b64: 'YQ==',
    });
  });

  test('GIVEN a --secret without a name THEN the usage error says what it takes', () => {
    expect(() => parseSecrets(['=abc'])).toThrow('--secret takes NAME=VALUE, got "=abc"');
    expect(() => parseSecrets(['token'])).toThrow('--secret takes NAME=VALUE');
  });

  test('GIVEN a failed build THEN its progress line carries the log tail, indented', () => {
    const line = progressLine({
      buildId: 'p:1',
      projectName: 'pushline-shop-web',
      commitSha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
      stage: 'failed',
      detail: 'pushline: error: GIT_SSH_KEY is empty\nexit status 1',
    });
    expect(line).toBe(
      'build pushline-shop-web 6113728f27ae: failed\n    | pushline: error: GIT_SSH_KEY is empty\n    | exit status 1',
    );
  });

  test('GIVEN --help THEN every option, --approve included, starts a line of its own', () => {
    const options = USAGE.split('\n').flatMap((line) => /^ {2}(--[a-z-]+)/.exec(line)?.[1] ?? []);
    expect(options).toEqual(['--config', '--ssh-key', '--secret', '--demo', '--approve', '--verbose']);
  });
});
