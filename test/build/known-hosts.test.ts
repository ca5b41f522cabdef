import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cloneUrlHost,
  KNOWN_HOSTS_PRESET_LINES,
  knownHostsLineCovers,
  resolveKnownHosts,
} from '../../lib/config/known-hosts';
import { missingTools, TOOL_PATHS } from '../../local/daemons';

/** Host-key presets and the check that the pinned keys cover the host the build connects to. */

const PUBLISHED_FINGERPRINTS = {
  github: [
    'SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU',
    'SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM',
    'SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s',
  ],
  // Atlassian: "Set up additional SSH keys" (ECDSA, Ed25519) and its knowledge-base article on the host's RSA key.
  bitbucket: [
    'SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0',
    'SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM',
    'SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E',
  ],
  gitlab: [
    'SHA256:eUXGGm1YGsMAS7vkcx6JOJdOGHPem5gQp4taiCfCLB8',
    'SHA256:HbW3g8zUjNSksFbqTiUWPWg2Bq1x8xdGUrliXFzSnUw',
    'SHA256:ROQFvPThGrW4RuWLoL9tq9I9zJ42fK4XywyRtbOz/EQ',
  ],
};

const describeWithSshKeygen = missingTools(['ssh-keygen']).length > 0 ? describe.skip : describe;
describeWithSshKeygen('GIVEN the GitHub, GitLab and Bitbucket presets', () => {
  test.each(['github', 'gitlab', 'bitbucket'] as const)(
    'WHEN ssh-keygen reads the %s lines THEN their fingerprints are the ones the provider publishes',
    (preset) => {
      const dir = mkdtempSync(join(tmpdir(), 'pl-kh-'));
      try {
        writeFileSync(join(dir, 'known_hosts'), `${KNOWN_HOSTS_PRESET_LINES[preset].join('\n')}\n`);
        const listed = execFileSync(TOOL_PATHS['ssh-keygen'], ['-lf', join(dir, 'known_hosts')], {
          encoding: 'utf8',
        });
        const fingerprints = listed
          .trim()
          .split('\n')
          .map((line) => line.split(' ')[1]);
        expect(fingerprints).toEqual(PUBLISHED_FINGERPRINTS[preset]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

test('GIVEN clone URLs in both SSH forms WHEN their host is taken THEN host and non-default port come out', () => {
  expect(cloneUrlHost('git@github.com:o/r.git')).toEqual({ host: 'github.com' });
  expect(cloneUrlHost('example@example.git.backlog.jp:/SHOP/api.git')).toEqual({
    host: 'example.git.backlog.jp',
  });
  expect(cloneUrlHost('ssh://git@gitlab.example.com:2222/g/p.git')).toEqual({
    host: 'gitlab.example.com',
    port: 2222,
  });
  expect(cloneUrlHost('ssh://git@gitlab.com:22/g/p.git')).toEqual({ host: 'gitlab.com' });
});

test('GIVEN known_hosts host patterns WHEN matched THEN lists, wildcards and ports work as in OpenSSH', () => {
  expect(knownHostsLineCovers('*.git.backlog.jp ssh-ed25519 AAAA', { host: 'space.git.backlog.jp' })).toBe(
    true,
  );
  expect(knownHostsLineCovers('a.example,github.com ssh-ed25519 AAAA', { host: 'github.com' })).toBe(true);
  expect(knownHostsLineCovers('[127.0.0.1]:2222 ssh-ed25519 AAAA', { host: '127.0.0.1', port: 2222 })).toBe(
    true,
  );
  expect(knownHostsLineCovers('github.com ssh-ed25519 AAAA', { host: 'github.com.evil.example' })).toBe(
    false,
  );
});

test('GIVEN a GitHub repository with no knownHosts WHEN resolved THEN it gets the GitHub preset and no problem', () => {
  const resolved = resolveKnownHosts({
    provider: 'github',
    repository: 'o/r',
    cloneUrl: 'git@github.com:o/r.git',
  });
  expect(resolved).toEqual({ lines: KNOWN_HOSTS_PRESET_LINES.github, preset: 'github' });
});

test('GIVEN a Backlog repository on backlog.com WHEN resolved THEN the backlog-com preset is used and its missing key reported', () => {
  const resolved = resolveKnownHosts({
    provider: 'backlog',
    repository: 'P/r',
    cloneUrl: 'space@space.git.backlog.com:/P/r.git',
  });
  expect(resolved.preset).toBe('backlog-com');
  expect(resolved.lines).toEqual([]);
  expect(resolved.problem).toContain('space.git.backlog.com');
});

test('GIVEN knownHosts lines for another host WHEN resolved THEN the mismatch is reported before any build runs', () => {
  const resolved = resolveKnownHosts({
    provider: 'gitlab',
    repository: 'g/p',
    cloneUrl: 'git@gitlab.example.com:g/p.git',
    knownHosts: 'gitlab',
  });
  expect(resolved.problem).toContain('no key for gitlab.example.com');
});

test('GIVEN a Backlog Enterprise repository cloned over port 8972 WHEN resolved THEN only a line for [host]:8972 covers it', () => {
  const source = {
    provider: 'backlog',
    repository: 'SHOP/api',
    cloneUrl: 'ssh://git@backlog.example.jp:8972/SHOP/api.git',
  } as const;
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
  expect(
    resolveKnownHosts({ ...source, knownHosts: [`[backlog.example.jp]:8972 ${key}`] }).problem,
  ).toBeUndefined();
  expect(resolveKnownHosts({ ...source, knownHosts: [`backlog.example.jp ${key}`] }).problem).toContain(
    'no key for [backlog.example.jp]:8972',
  );
});

test('GIVEN a Bitbucket Cloud repository with no knownHosts WHEN resolved THEN it gets the bitbucket preset, which covers bitbucket.org', () => {
  const resolved = resolveKnownHosts({
    provider: 'bitbucket',
    repository: 'team/app',
    cloneUrl: 'git@bitbucket.org:team/app.git',
  });
  expect(resolved).toEqual({ lines: KNOWN_HOSTS_PRESET_LINES.bitbucket, preset: 'bitbucket' });
});
