import { parseConfig } from '../lib/config/load';
import { webhookRoutes } from '../lib/shared-stack';
import { problemsOf } from './support/config';

/** Which server a configured repository lives on, and what the config must say for a self-hosted one. */

const KEY = 'AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';

function config(source: string): string {
  return `
webhook:
  allowedCidrs: [203.0.113.0/24]
repositories:
  - name: app
    source: ${source}
`;
}

test.each([
  [
    'github.com',
    '{ provider: github, repository: acme/api, cloneUrl: "git@github.com:acme/api.git" }',
    'github.com',
  ],
  ['gitlab.com', '{ provider: gitlab, repository: g/p, cloneUrl: "git@gitlab.com:g/p.git" }', 'gitlab.com'],
  [
    'a backlog.jp space',
    '{ provider: backlog, repository: SHOP/api, cloneUrl: "example@example.git.backlog.jp:/SHOP/api.git" }',
    'example.backlog.jp',
  ],
  [
    'a backlog.com space cloned from git.backlog.com',
    '{ provider: backlog, repository: SHOP/api, cloneUrl: "demo@git.backlog.com:/SHOP/api.git" }',
    'demo.backlog.com',
  ],
  [
    'Backlog Enterprise',
    `{ provider: backlog, repository: SHOP/api, cloneUrl: "ssh://git@backlog.example.jp:8972/SHOP/api.git", knownHosts: ["[backlog.example.jp]:8972 ssh-ed25519 ${KEY}"], apiUrl: "http://backlog.example.jp:8969/backlog" }`,
    'backlog.example.jp',
  ],
  [
    'GitHub Enterprise Server',
    `{ provider: github, host: GHES.example.co.jp, repository: acme/api, cloneUrl: "git@ghes.example.co.jp:acme/api.git", knownHosts: ["ghes.example.co.jp ssh-ed25519 ${KEY}"] }`,
    'ghes.example.co.jp',
  ],
])(
  'GIVEN a repository on %s WHEN routed THEN the webhook compares payloads against host %s',
  (_where, source, host) => {
    const [route] = webhookRoutes(parseConfig(config(source)));
    expect(route?.host).toBe(host);
  },
);

test('GIVEN a GitHub Enterprise Server repository without knownHosts WHEN validated THEN the error says its host keys are required', () => {
  expect(
    problemsOf(
      config(
        '{ provider: github, host: ghes.example.co.jp, repository: acme/api, cloneUrl: "git@ghes.example.co.jp:acme/api.git" }',
      ),
    ),
  ).toEqual([
    expect.stringMatching(
      /^repositories\[0\]\.source\.knownHosts: is required for the self-hosted server ghes\.example\.co\.jp: give its known_hosts lines/,
    ),
  ]);
});

test('GIVEN a self-managed GitLab repository naming the github preset WHEN validated THEN it is refused: no preset can hold its key', () => {
  expect(
    problemsOf(
      config(
        '{ provider: gitlab, host: gitlab.example.com, repository: g/p, cloneUrl: "git@gitlab.example.com:g/p.git", knownHosts: gitlab }',
      ),
    ),
  ).toEqual([
    expect.stringContaining('source.knownHosts: is required for the self-hosted server gitlab.example.com'),
  ]);
});

test('GIVEN a host with a scheme WHEN validated THEN the error says to give the host name only', () => {
  expect(
    problemsOf(
      config(
        `{ provider: github, host: "https://ghes.example.co.jp", repository: acme/api, cloneUrl: "git@ghes.example.co.jp:acme/api.git", knownHosts: ["ghes.example.co.jp ssh-ed25519 ${KEY}"] }`,
      ),
    ),
  ).toEqual([expect.stringContaining('source.host: must be a host name such as github.example.co.jp')]);
});

test.each([
  [
    'a Gitea repository',
    '{ provider: gitea, repository: team/app, cloneUrl: "git@gitea.example.com:team/app.git" }',
    'gitea.example.com',
  ],
  [
    'a Backlog Enterprise repository',
    '{ provider: backlog, repository: SHOP/api, cloneUrl: "ssh://git@backlog.example.jp:8972/SHOP/api.git", apiUrl: "http://backlog.example.jp:8969/backlog" }',
    'backlog.example.jp',
  ],
])('GIVEN %s without knownHosts WHEN validated THEN its host keys are required', (_name, source, host) => {
  expect(problemsOf(config(source))).toEqual([
    expect.stringContaining(`source.knownHosts: is required for the self-hosted server ${host}`),
  ]);
});
