import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';

/**
 * Runs a CodeBuild buildspec (version 0.2) on this machine the way CodeBuild runs it, so the build
 * can be tested and used locally with no AWS:
 * - phases in order: install, pre_build, build, post_build; each command in `bash` (or `env.shell`);
 * - a failing command ends its phase; a failed install or pre_build skips the phases after it, a
 *   failed build still runs post_build (with `CODEBUILD_BUILD_SUCCEEDING=0`), `on-failure: ABORT`
 *   stops at once, `on-failure: CONTINUE` goes on; a phase's `finally` commands always run;
 * - exported variables and the working directory carry over from one command (and phase) to the
 *   next, as in buildspec 0.2;
 * - environment precedence as in CodeBuild: this process's environment (the "image"), then the
 *   buildspec's `env.variables`, then `env` (the project's variables and the StartBuild overrides).
 * `env.parameter-store`, `env.secrets-manager` and `env.exported-variables` are AWS look-ups: give
 * their values in `env` instead. Artifacts, reports and cache sections are not handled here.
 */
export interface RunBuildspecOptions {
  /** Path of the buildspec file. */
  readonly buildspecPath: string;
  /** Variables that win over the buildspec's: the project's environment and the build's overrides. */
  readonly env?: Readonly<Record<string, string>>;
  /** The source directory: the commands' starting directory and `CODEBUILD_SRC_DIR`. */
  readonly cwd: string;
  /**
   * Receives every output line (stdout and stderr of the commands, plus `[Container]` lines).
   * @default lines are only collected in the result
   */
  readonly onLog?: (line: string) => void;
  /**
   * Start from this process's environment, as a build image would provide PATH and friends.
   * @default true
   */
  readonly inheritEnv?: boolean;
}

export type PhaseName = 'install' | 'pre_build' | 'build' | 'post_build';
export const PHASES: readonly PhaseName[] = ['install', 'pre_build', 'build', 'post_build'];

export interface PhaseResult {
  readonly name: PhaseName;
  readonly status: 'SUCCEEDED' | 'FAILED' | 'SKIPPED';
  /** The exit status of the command that failed, 0 when the phase succeeded or was skipped. */
  readonly exitCode: number;
  readonly durationMs: number;
}

export interface RunBuildspecResult {
  /** True when every phase that ran succeeded. */
  readonly succeeded: boolean;
  readonly phases: readonly PhaseResult[];
  /** Every output line, in order. */
  readonly log: readonly string[];
}

/** A buildspec this runner cannot run faithfully; the message names the field. */
export class BuildspecError extends Error {
  override name = 'BuildspecError';
}

interface PhaseSpec {
  readonly commands: readonly string[];
  readonly finally: readonly string[];
  readonly onFailure: 'ABORT' | 'CONTINUE' | undefined;
}

interface ParsedBuildspec {
  readonly shell: string;
  readonly variables: Record<string, string>;
  readonly phases: Partial<Record<PhaseName, PhaseSpec>>;
}

/** Parses and checks a buildspec's text. */
export function parseBuildspec(text: string, source = 'buildspec.yml'): ParsedBuildspec {
  const doc: unknown = parse(text);
  if (!isRecord(doc)) throw new BuildspecError(`${source}: not a YAML mapping`);
  if (String(doc.version) !== '0.2') {
    throw new BuildspecError(`${source}: version must be 0.2, got ${JSON.stringify(doc.version)}`);
  }
  const env = isRecord(doc.env) ? doc.env : {};
  const shell = env.shell === undefined ? 'bash' : String(env.shell);
  if (shell !== 'bash' && shell !== 'sh') {
    throw new BuildspecError(`${source}: env.shell must be bash or sh locally, got ${shell}`);
  }
  const variables: Record<string, string> = {};
  if (isRecord(env.variables)) {
    for (const [name, value] of Object.entries(env.variables)) variables[name] = String(value ?? '');
  }
  const phases: Partial<Record<PhaseName, PhaseSpec>> = {};
  const rawPhases = isRecord(doc.phases) ? doc.phases : {};
  for (const name of Object.keys(rawPhases)) {
    if (!(PHASES as readonly string[]).includes(name)) {
      throw new BuildspecError(`${source}: phases.${name} is not a CodeBuild phase (${PHASES.join(', ')})`);
    }
  }
  for (const name of PHASES) {
    const raw = rawPhases[name];
    if (raw === undefined || raw === null) continue;
    if (!isRecord(raw)) throw new BuildspecError(`${source}: phases.${name} must be a mapping`);
    const onFailure = raw['on-failure'];
    if (onFailure !== undefined && onFailure !== 'ABORT' && onFailure !== 'CONTINUE') {
      throw new BuildspecError(
        `${source}: phases.${name}.on-failure must be ABORT or CONTINUE, got ${String(onFailure)}`,
      );
    }
    phases[name] = {
      commands: stringList(raw.commands, `${source}: phases.${name}.commands`),
      finally: stringList(raw.finally, `${source}: phases.${name}.finally`),
      onFailure,
    };
  }
  return { shell, variables, phases };
}

/** Runs a buildspec file; resolves with the outcome of every phase (it never rejects on a failed build). */
export async function runBuildspec(options: RunBuildspecOptions): Promise<RunBuildspecResult> {
  const spec = parseBuildspec(readFileSync(options.buildspecPath, 'utf8'), options.buildspecPath);
  const stateDir = mkdtempSync(join(tmpdir(), 'pushline-buildspec-'));
  const log: string[] = [];
  const emit = (line: string) => {
    log.push(line);
    options.onLog?.(line);
  };
  const baseEnv: Record<string, string> = {
    ...(options.inheritEnv === false ? {} : stringEnv(process.env)),
    ...spec.variables,
    CODEBUILD_SRC_DIR: options.cwd,
    CODEBUILD_BUILD_ID: `local:${Date.now()}`,
    CODEBUILD_LOCAL: 'true',
    ...options.env,
  };
  const session = new ShellSession(spec.shell, stateDir, options.cwd, baseEnv, emit);
  const phases: PhaseResult[] = [];
  let succeeding = true;
  let stop = false;
  try {
    for (const name of PHASES) {
      const phase = spec.phases[name];
      if (phase === undefined) continue;
      if (stop) {
        phases.push({ name, status: 'SKIPPED', exitCode: 0, durationMs: 0 });
        continue;
      }
      const started = Date.now();
      emit(`[Container] Entering phase ${name.toUpperCase()}`);
      let exitCode = 0;
      for (const command of phase.commands) {
        emit(`[Container] Running command ${command}`);
        exitCode = await session.run(command, succeeding);
        if (exitCode !== 0) {
          emit(`[Container] Command did not exit successfully ${command} exit status ${exitCode}`);
          break;
        }
      }
      for (const command of phase.finally) {
        emit(`[Container] Running command ${command}`);
        const finallyCode = await session.run(command, succeeding && exitCode === 0);
        if (finallyCode !== 0 && exitCode === 0) exitCode = finallyCode;
      }
      const failed = exitCode !== 0;
      phases.push({
        name,
        status: failed ? 'FAILED' : 'SUCCEEDED',
        exitCode,
        durationMs: Date.now() - started,
      });
      emit(`[Container] Phase complete: ${name.toUpperCase()} State: ${failed ? 'FAILED' : 'SUCCEEDED'}`);
      if (!failed) continue;
      succeeding = false;
      if (phase.onFailure === 'ABORT') stop = true;
      else if (phase.onFailure !== 'CONTINUE' && (name === 'install' || name === 'pre_build')) stop = true;
    }
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
  return { succeeded: succeeding, phases, log };
}

/**
 * One logical shell across commands: each command runs in a fresh shell that first restores the
 * exported variables and directory the previous command left, and saves them again on exit.
 */
class ShellSession {
  private readonly envFile: string;
  private readonly cwdFile: string;

  constructor(
    private readonly shell: string,
    stateDir: string,
    cwd: string,
    private readonly env: Record<string, string>,
    private readonly emit: (line: string) => void,
  ) {
    this.envFile = join(stateDir, 'env');
    this.cwdFile = join(stateDir, 'cwd');
    writeFileSync(this.envFile, '');
    writeFileSync(this.cwdFile, `${cwd}\n`);
  }

  run(command: string, succeeding: boolean): Promise<number> {
    const script = [
      `. ${quote(this.envFile)} 2>/dev/null`,
      `cd "$(cat ${quote(this.cwdFile)})" || exit 1`,
      `export CODEBUILD_BUILD_SUCCEEDING=${succeeding ? 1 : 0}`,
      `trap 'export -p > ${quote(this.envFile)}; pwd > ${quote(this.cwdFile)}' EXIT`,
      command,
    ].join('\n');
    return new Promise((resolve, reject) => {
      const child = spawn(this.shell, ['-c', script], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      const forward = lineSplitter(this.emit);
      child.stdout.on('data', forward.push);
      child.stderr.on('data', forward.push);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        forward.flush();
        resolve(code ?? (signal ? 128 : 1));
      });
    });
  }
}

function lineSplitter(emit: (line: string) => void): { push: (chunk: Buffer) => void; flush: () => void } {
  let pending = '';
  return {
    push: (chunk) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) emit(line);
    },
    flush: () => {
      if (pending.length > 0) emit(pending);
      pending = '';
    },
  };
}

function quote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) out[name] = value;
  return out;
}

function stringList(value: unknown, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new BuildspecError(`${where} must be a list of commands`);
  return value.map((item) => String(item));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
