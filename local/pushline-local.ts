import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../lib/config/load';
import { notificationLine, printEndpoints, progressLine, reportLine, retryLine } from './console-output';
import { LOCAL_BUILD_TOOLS, MissingToolError, missingTools } from './daemons';
import { runDemo } from './demo';
import { approvalGate } from './environment-walk';
import { ROOT, startLocalPipeline } from './local-pipeline';

/**
 * `npm run local [-- --config PATH] [-- --demo]`: the pipeline on this machine, from a webhook to
 * a tagged image in a local registry. See the README's "Try it locally".
 */

export const USAGE = `usage: npm run local -- [--config PATH] [--ssh-key PATH] [--demo] [--approve] [--verbose]
  --config PATH   the config to run (default pipeline.config.yaml)
  --ssh-key PATH  the deploy key the builds fetch with (default ~/.ssh/id_ed25519)
  --secret NAME=VALUE  a Secrets Manager secret a build reads (docker.secrets); repeatable
  --demo          make a Git repository served over SSH, push twice, build both, deploy, check, stop
  --approve       grant every manual approval of the deploy walks without asking (scripts, CI);
                  without it, a terminal asks for y (approve) or n (reject) at each approval
  --verbose       stream every build log line, not only progress`;

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      config: { type: 'string', default: 'pipeline.config.yaml' },
      'ssh-key': { type: 'string' },
      secret: { type: 'string', multiple: true },
      demo: { type: 'boolean', default: false },
      approve: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    print(USAGE);
    return 0;
  }
  const missing = missingTools(LOCAL_BUILD_TOOLS);
  if (missing.length > 0) {
    process.stderr.write(`${new MissingToolError(missing).message}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(
      'pushline local starts a Docker engine, which needs root: run it as root (or with sudo)\n',
    );
    return 2;
  }

  const workDir = mkdtempSync(join(tmpdir(), 'pushline-local-'));
  const onBuildLog = values.verbose
    ? (project: string, line: string) => print(`  [${project}] ${line}`)
    : undefined;
  // Every part registers its stop as soon as it starts; stopped in reverse order, each once.
  const stops: (() => Promise<void>)[] = [];
  const registerStop = (stop: () => Promise<void>) => {
    stops.push(stop);
  };
  let stopping: Promise<void> | undefined;
  const cleanUp = () => {
    stopping ??= (async () => {
      for (const stop of stops.reverse()) await stop().catch(() => undefined);
      rmSync(workDir, { recursive: true, force: true });
    })();
    return stopping;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      print(`\n${signal}: stopping everything pushline local started`);
      void cleanUp().then(() => process.exit(130));
    });
  }

  const approve = approvalGate({
    approveAll: values.approve,
    input: process.stdin,
    print,
    // In raw mode Ctrl-C is a key, not a signal: pass it on as the signal it would have been.
    onInterrupt: () => process.kill(process.pid, 'SIGINT'),
  });
  try {
    if (values.demo) {
      return await runDemo({ workDir, print, onBuildLog, registerStop, approve });
    }
    const configPath = resolve(ROOT, values.config);
    const config = loadConfig(configPath);
    const keyPath = values['ssh-key'] ?? join(homedir(), '.ssh', 'id_ed25519');
    // Without a key the webhooks still work end to end; only the builds' fetch fails, and says why.
    const sshPrivateKey = existsSync(keyPath) ? readFileSync(keyPath, 'utf8') : '';
    if (!sshPrivateKey)
      print(`warning: no deploy key at ${keyPath} (--ssh-key PATH): builds will fail to fetch`);
    print(`pushline local: synthesizing ${configPath} and starting the local parts...`);
    const pipeline = await startLocalPipeline({
      config,
      configPath,
      workDir,
      sshPrivateKey,
      secrets: parseSecrets(values.secret ?? []),
      onProgress: (p) => print(progressLine(p)),
      onBuildLog,
      onWebhook: (w) => print(`webhook ${w.provider}: ${w.status} ${w.body}`),
      onRetry: (r) => print(retryLine(r)),
      onReport: (r) => print(reportLine(r)),
      onNotification: (m) => print(notificationLine(m)),
      approve,
      onDeploy: print,
      onWarning: (message) => print(`warning: ${message}`),
      registerStop,
    });
    printEndpoints(pipeline, print);
    print('waiting for webhooks; Ctrl-C stops everything');
    await new Promise<never>(() => undefined);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof MissingToolError || err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  } finally {
    await cleanUp();
  }
}

/** `--secret name=value` options as the secrets a local build may read. */
export function parseSecrets(options: readonly string[]): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const option of options) {
    const at = option.indexOf('=');
    if (at <= 0) throw new UsageError(`--secret takes NAME=VALUE, got ${JSON.stringify(option)}`);
    secrets[option.slice(0, at)] = option.slice(at + 1);
  }
  return secrets;
}

class UsageError extends Error {}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`pushline local failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
