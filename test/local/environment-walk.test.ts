import { EventEmitter } from 'node:events';
import {
  type ApprovalRequest,
  type Approver,
  approvalGate,
  type DeployOutcome,
  type KeypressInput,
  type WalkEnvironment,
  walkEnvironments,
} from '../../local/environment-walk';

const IMAGE = '127.0.0.1:5000/shop/web:6113728f27ae82c7b1a177c8d03f9e96e0adf246';
const STAGING_PRODUCTION: readonly WalkEnvironment[] = [
  { name: 'staging', approval: false },
  { name: 'production', approval: true },
];

/** A walk whose deploys succeed (unless `failIn` names the environment) and record their order. */
function walk(options: { environments?: readonly WalkEnvironment[]; approve?: Approver; failIn?: string }) {
  const lines: string[] = [];
  const events: string[] = [];
  const result = walkEnvironments({
    repository: 'shop/web',
    environments: options.environments ?? STAGING_PRODUCTION,
    image: IMAGE,
    approve: options.approve ?? (async () => ({ approved: true, by: '--approve' })),
    announceApproval: async (request) => {
      events.push(`announce ${request.stageName}/${request.actionName}`);
    },
    deploy: async (environment): Promise<DeployOutcome> => {
      events.push(`deploy ${environment.name}`);
      return options.failIn !== undefined && environment.name === options.failIn
        ? { ok: false, reason: 'the registry answers 404' }
        : { ok: true, image: IMAGE };
    },
    print: (line) => lines.push(line),
  });
  return { result, lines, events };
}

describe('the local pipeline walks the environments', () => {
  test('GIVEN staging then production with an approval WHEN approved THEN staging deploys, the approval is announced and granted, then production deploys the same image', async () => {
    const { result, lines, events } = walk({});
    expect(await result).toEqual({
      deployed: [
        { environment: 'staging', image: IMAGE },
        { environment: 'production', image: IMAGE },
      ],
    });
    expect(events).toEqual(['deploy staging', 'announce Deploy-production/Approve', 'deploy production']);
    expect(lines).toEqual([
      `deploy shop/web staging: deployed ${IMAGE}`,
      `deploy shop/web production: waiting for approval to deploy ${IMAGE}`,
      'deploy shop/web production: approved (--approve)',
      `deploy shop/web production: deployed ${IMAGE}`,
    ]);
  });

  test('GIVEN the approval is rejected THEN production is not deployed and the line says why', async () => {
    const { result, lines, events } = walk({
      approve: async () => ({ approved: false, reason: 'rejected (n pressed)' }),
    });
    expect(await result).toEqual({
      deployed: [{ environment: 'staging', image: IMAGE }],
      stopped: { environment: 'production', reason: 'rejected (n pressed)' },
    });
    expect(events).not.toContain('deploy production');
    expect(lines.at(-1)).toMatch(/^deploy shop\/web production: not approved: rejected \(n pressed\)/);
  });

  test('GIVEN staging fails to deploy THEN the walk stops before production: no approval asked, nothing deployed there', async () => {
    const approve = jest.fn(async () => ({ approved: true as const, by: '--approve' }));
    const { result, lines, events } = walk({ failIn: 'staging', approve });
    expect(await result).toEqual({
      deployed: [],
      stopped: { environment: 'staging', reason: 'the registry answers 404' },
    });
    expect(events).toEqual(['deploy staging']);
    expect(approve).not.toHaveBeenCalled();
    expect(lines).toEqual([
      'deploy shop/web staging: deploy failed: the registry answers 404; not deploying production',
    ]);
  });

  test('GIVEN a deploy section without environments THEN its one service is deployed under the name "service"', async () => {
    const { result, lines } = walk({ environments: [{ approval: false }] });
    expect(await result).toEqual({ deployed: [{ environment: 'service', image: IMAGE }] });
    expect(lines).toEqual([`deploy shop/web service: deployed ${IMAGE}`]);
  });
});

/** A terminal whose keys the test presses. */
class FakeTerminal extends EventEmitter implements KeypressInput {
  raw = false;
  paused = true;
  constructor(readonly isTTY: boolean) {
    super();
  }
  setRawMode(raw: boolean) {
    this.raw = raw;
    return this;
  }
  resume() {
    this.paused = false;
    return this;
  }
  pause() {
    this.paused = true;
    return this;
  }
  press(key: string) {
    this.emit('data', Buffer.from(key));
  }
}

const REQUEST: ApprovalRequest = {
  environment: 'production',
  stageName: 'Deploy-production',
  actionName: 'Approve',
  image: IMAGE,
};

function gate(options: { approveAll?: boolean; isTTY?: boolean; typedAheadMs?: number }) {
  const terminal = new FakeTerminal(options.isTTY ?? true);
  const lines: string[] = [];
  const onInterrupt = jest.fn();
  const approve = approvalGate({
    approveAll: options.approveAll ?? false,
    input: terminal,
    print: (line) => lines.push(line),
    onInterrupt,
    typedAheadMs: options.typedAheadMs ?? 0,
  });
  return { approve, terminal, lines, onInterrupt };
}

describe('approvals in a local run', () => {
  test('GIVEN --approve THEN every approval is granted without reading a key', async () => {
    const { approve, terminal } = gate({ approveAll: true, isTTY: false });
    expect(await approve(REQUEST)).toEqual({ approved: true, by: '--approve' });
    expect(terminal.listenerCount('data')).toBe(0);
  });

  test('GIVEN no terminal and no --approve THEN the approval is refused at once, saying how to give it', async () => {
    const { approve, lines, terminal } = gate({ isTTY: false });
    expect(await approve(REQUEST)).toEqual({
      approved: false,
      reason: 'no terminal to approve on and no --approve',
    });
    expect(lines).toEqual([
      expect.stringMatching(
        /^approval Deploy-production\/Approve: waiting for approval, but stdin is not a terminal.*npm run local -- --approve.*press y$/,
      ),
    ]);
    expect(terminal.listenerCount('data')).toBe(0);
  });

  test('GIVEN a terminal WHEN y is pressed THEN the approval is granted and the terminal is given back', async () => {
    const { approve, terminal, lines } = gate({});
    const decision = approve(REQUEST);
    await Promise.resolve();
    expect(lines.at(-1)).toMatch(
      /press y to approve deploying .* to production, n to reject .* Ctrl-C to stop/,
    );
    expect(terminal.raw).toBe(true);
    terminal.press('x');
    expect(lines.at(-1)).toBe('approval Deploy-production/Approve: press y to approve or n to reject');
    terminal.press('y');
    expect(await decision).toEqual({ approved: true, by: 'y pressed' });
    expect(terminal.raw).toBe(false);
    expect(terminal.paused).toBe(true);
    expect(terminal.listenerCount('data')).toBe(0);
  });

  test('GIVEN a terminal WHEN n is pressed THEN the approval is rejected', async () => {
    const { approve, terminal } = gate({});
    const decision = approve(REQUEST);
    await Promise.resolve();
    terminal.press('n');
    expect(await decision).toEqual({ approved: false, reason: 'rejected (n pressed)' });
  });

  test('GIVEN a terminal WHEN Ctrl-C is pressed THEN nothing is approved and pushline local is told to stop', async () => {
    const { approve, terminal, onInterrupt } = gate({});
    const decision = approve(REQUEST);
    await Promise.resolve();
    terminal.press('\u0003');
    expect(await decision).toEqual({ approved: false, reason: 'interrupted (Ctrl-C)' });
    expect(onInterrupt).toHaveBeenCalledTimes(1);
  });

  test('GIVEN two approvals at once THEN they are asked one after the other', async () => {
    const { approve, terminal, lines } = gate({});
    const first = approve(REQUEST);
    const second = approve({ ...REQUEST, environment: 'production-eu', stageName: 'Deploy-production-eu' });
    await Promise.resolve();
    expect(lines.filter((l) => l.includes('press y to approve deploying'))).toHaveLength(1);
    terminal.press('y');
    expect(await first).toEqual({ approved: true, by: 'y pressed' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.at(-1)).toMatch(/^approval Deploy-production-eu\/Approve: press y/);
    terminal.press('n');
    expect(await second).toEqual({ approved: false, reason: 'rejected (n pressed)' });
  });

  test('GIVEN a y typed before the question THEN it approves nothing, and Ctrl-C still stops', async () => {
    const { approve, terminal, lines } = gate({ typedAheadMs: 60_000 });
    let settled = false;
    const decision = approve(REQUEST).then((d) => {
      settled = true;
      return d;
    });
    await Promise.resolve();
    terminal.press('y');
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false);
    expect(lines.at(-1)).toBe(
      'approval Deploy-production/Approve: ignored keys typed before the question; press y or n now',
    );
    terminal.press('\u0003');
    expect(await decision).toEqual({ approved: false, reason: 'interrupted (Ctrl-C)' });
  });
});
