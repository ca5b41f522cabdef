import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { e2eUnavailableReason } from '../build/e2e-environment';

/**
 * `npm run local -- --demo --approve` as a user runs it: a Git repository over SSH, two pushes, a
 * Backlog webhook for each through the synthesized webhook function, two real builds into a real
 * registry, and the walk of the artifact through staging and, once approved, production.
 * The assertions read only what the demo prints.
 */

const ROOT = join(__dirname, '..', '..');
const unavailable = e2eUnavailableReason();
if (unavailable && process.env.CI) {
  test('pushline local has its tools (CI installs them in .ci/run)', () => {
    throw new Error(`pushline local cannot run in CI: ${unavailable}`);
  });
} else if (unavailable) {
  process.stderr.write(
    `\n!!! SKIPPED: pushline local demo (test/local/demo.e2e.test.ts): ${unavailable}\n\n`,
  );
}
const describeE2e = unavailable ? describe.skip : describe;

describeE2e('npm run local -- --demo --approve', () => {
  let output = '';
  let status: number | null = null;

  beforeAll(() => {
    const run = spawnSync('npx', ['tsx', 'local/pushline-local.ts', '--demo', '--approve'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 540_000,
      env: { ...process.env, POWERTOOLS_LOG_LEVEL: 'SILENT' },
    });
    output = run.stdout;
    status = run.status;
    if (status !== 0) process.stderr.write(`demo output:\n${run.stdout}\n${run.stderr}\n`);
  }, 600_000);

  const pushed = (n: number) => new RegExp(`^push ${n}: ([0-9a-f]{40})$`, 'm').exec(output)?.[1];

  test('GIVEN two pushes WHEN each is announced by a Backlog webhook THEN the webhook answers 202 each time', () => {
    expect(output).toMatch(
      /^webhook push 1: 202 \{"builds":\[\{"repository":"demo\/app","buildId":"[^"]+"\}\]\}$/m,
    );
    expect(output).toMatch(/^webhook push 2: 202 /m);
  });

  test('GIVEN CodeBuild throttling while push 2 is delivered THEN the build is queued, and the retry consumer starts it', () => {
    expect(output).toMatch(/^webhook push 2: 202 \{"queued":\[\{"repository":"demo\/app"\}\]\}$/m);
    expect(output).toMatch(/^retry queue: message \w+ try \d+: build started$/m);
    expect(output).not.toMatch(/dead-letter queue/);
  });

  test('THEN both commits are built and in the registry under their full and short SHA', () => {
    const first = pushed(1);
    const second = pushed(2);
    expect(first).toBeDefined();
    expect(second).toBeDefined();
    expect(first).not.toBe(second);
    for (const sha of [first, second] as string[]) {
      expect(output).toMatch(
        new RegExp(`^build pushline-demo-demo-app ${sha.slice(0, 12)}: done \\S+/demo/app:${sha}$`, 'm'),
      );
      expect(output).toMatch(
        new RegExp(`^image \\S+/demo/app:${sha} present \\(short tag ${sha.slice(0, 12)} present\\)$`, 'm'),
      );
    }
    expect(output).toMatch(/^builds: 2;/m);
  });

  test('GIVEN the build of push 1 held until push 2 is built WHEN it finishes last THEN the deploy artifact still names push 2', () => {
    const second = pushed(2) as string;
    expect(output).toMatch(/^build of push 1 held until the build of push 2 has finished$/m);
    expect(output.indexOf(`${second.slice(0, 12)}: done`)).toBeLessThan(
      output.indexOf(`${(pushed(1) as string).slice(0, 12)}: done`),
    );
    expect(output).toMatch(
      new RegExp(`^artifact artifacts/demo-app/deploy.zip: push 2 \\(${second}\\)`, 'm'),
    );
  });

  test('GIVEN the second delivery replayed THEN nothing new is built', () => {
    expect(output).toMatch(/^webhook replay of push 2: 20[02] .*\(new builds: 0\)$/m);
  });

  test('GIVEN a delivery with a wrong token THEN it is answered 401 and builds nothing', () => {
    expect(output).toMatch(/^webhook with a wrong token: 401 .*\(new builds: 0\)$/m);
  });

  test('THEN each push is reported on the open Backlog pull request of its branch as built, with its image', () => {
    for (const sha of [pushed(1), pushed(2)] as string[]) {
      const short = sha.slice(0, 12);
      expect(output).toMatch(
        new RegExp(
          `^report backlog DEMO/app pull request #1: \\S+ pushline/demo/app: ${short} built \\(Image: \\S+/demo/app:${short}\\)$`,
          'm',
        ),
      );
    }
    expect(output).toMatch(/^build results: 2 of 2 pushes reported as built with their image$/m);
  });

  test('GIVEN staging then production with an approval WHEN --approve grants it THEN push 2 is deployed to staging, the approval announced, then production gets the same image', () => {
    const image = new RegExp(
      `^build pushline-demo-demo-app \\w+: done (\\S+/demo/app:${pushed(2)})$`,
      'm',
    ).exec(output)?.[1] as string;
    expect(image).toBeDefined();
    const lines = [
      `deploy demo/app staging: deployed ${image} (sha256:`,
      `deploy demo/app production: waiting for approval to deploy ${image}`,
      'notification: APPROVAL NEEDED: pushline-demo-pipeline-demo-app-local Deploy-production/Approve',
      'deploy demo/app production: approved (--approve)',
      `deploy demo/app production: deployed ${image} (sha256:`,
    ];
    const at = lines.map((line) => output.indexOf(`\n${line}`));
    expect(at.every((index) => index >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    const digests = [...output.matchAll(/^deploy demo\/app \w+: deployed \S+ \((sha256:[0-9a-f]{64})\)$/gm)];
    expect(digests.map((m) => m[1])).toHaveLength(2);
    expect(new Set(digests.map((m) => m[1])).size).toBe(1);
    expect(output).toMatch(
      /^deploy demo\/app production: validation GET \/health \(expecting 200\) not run: pushline local starts no containers/m,
    );
    expect(output).toMatch(/^deploy walk: staging then production deployed with one image, /m);
    // Push 1's build finished last but did not replace the artifact: it is not deployed anywhere.
    expect(output).not.toMatch(new RegExp(`deployed \\S+:${pushed(1)}`));
  });

  test('THEN the demo exits 0 and says so', () => {
    expect(output).toMatch(/^demo: OK$/m);
    expect(status).toBe(0);
  });
});
