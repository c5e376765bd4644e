// A real PgBouncer in transaction pooling mode in front of a test database
// (Debian's pgbouncer; run as the `postgres` OS user when we are root, since
// PgBouncer refuses to run as root).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../scripts/lib/cluster.js';

export interface Pooler {
  /** `url` with host and port replaced by the pooler's. */
  url(direct: string): string;
  stop(): Promise<void>;
}

export function havePgbouncer(): boolean {
  return spawnSync('sh', ['-c', 'command -v pgbouncer'], { stdio: 'ignore' }).status === 0;
}

/** Users: [name, password] pairs the pooler accepts and passes on. */
export async function startPgbouncer(direct: string, users: [string, string][]): Promise<Pooler> {
  const u = new URL(direct);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apportion-pgbouncer-'));
  const port = await freePort();
  const db = decodeURIComponent(u.pathname.slice(1));
  fs.writeFileSync(path.join(dir, 'userlist.txt'), users.map(([n, p]) => `"${n}" "${p}"`).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'pgbouncer.ini'), `[databases]
${db} = host=${u.hostname} port=${u.port} dbname=${db}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${path.join(dir, 'userlist.txt')}
pool_mode = transaction
default_pool_size = 4
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,application_name
logfile = ${path.join(dir, 'pgbouncer.log')}
`);
  const isRoot = process.getuid?.() === 0;
  if (isRoot) spawnSync('chown', ['-R', 'postgres', dir]);
  const args = [path.join(dir, 'pgbouncer.ini')];
  const proc: ChildProcess = isRoot
    ? spawn('runuser', ['-u', 'postgres', '--', 'pgbouncer', ...args], { stdio: 'ignore' })
    : spawn('pgbouncer', args, { stdio: 'ignore' });
  // Wait until it accepts connections.
  const net = await import('node:net');
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (i > 100) throw new Error(`pgbouncer did not start: ${fs.existsSync(path.join(dir, 'pgbouncer.log')) ? fs.readFileSync(path.join(dir, 'pgbouncer.log'), 'utf8') : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url(d: string) {
      const x = new URL(d);
      x.hostname = '127.0.0.1';
      x.port = String(port);
      return x.toString();
    },
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
