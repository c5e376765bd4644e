// The real orchestrator as a child process (`apportion worker`), for the
// end-to-end tests and npm run chaos.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface RunningOrchestrator {
  proc: ChildProcess;
  port: number;
  /** JSON log lines from stdout, and stderr as { stderr } chunks. */
  logs: Record<string, unknown>[];
  /** Resolves with the exit code once the process exits. */
  exited: Promise<number | null>;
  health(path: '/livez' | '/readyz' | '/status'): Promise<{ status: number; body: any }>;
  /** GET a path of the health server as text (e.g. /metrics). */
  get(path: string): Promise<{ status: number; text: string; contentType: string | null }>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  /** The command to run instead of this checkout's CLI under tsx, e.g. an installed package's bin; `worker` is appended. */
  command?: string[];
  cwd?: string;
}

export async function startOrchestrator(databaseUrl: string, env: Record<string, string> = {}, opts: StartOptions = {}): Promise<RunningOrchestrator> {
  const [exe, ...args] = opts.command ?? [process.execPath, '--import', 'tsx', path.join(root, 'orchestrator/cli.ts')];
  const proc = spawn(exe!, [...args, 'worker'], {
    cwd: opts.cwd ?? root,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      APPORTION_HEALTH_PORT: '0',
      APPORTION_POLL_INTERVAL_MS: '500',
      APPORTION_LEASE_SECONDS: '2',
      LOG_LEVEL: 'debug',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let buffered = '';
  let resolvePort: (p: number) => void;
  const portPromise = new Promise<number>((r) => (resolvePort = r));
  proc.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'health endpoint listening') resolvePort(entry.port as number);
      } catch {
        logs.push({ raw: line });
      }
    }
  });
  proc.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    logs.push({ stderr: c.toString() });
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const port = await Promise.race([
    portPromise,
    exited.then((code) => {
      throw new Error(`orchestrator exited (${code}) before listening: ${stderr}`);
    }),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`orchestrator did not start: ${stderr}`)), 30_000)),
  ]);
  const health = async (p: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${p}`);
    return { status: res.status, body: await res.json() };
  };
  const get = async (p: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${p}`);
    return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') };
  };
  return {
    proc,
    port,
    logs,
    exited,
    health,
    get,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}
