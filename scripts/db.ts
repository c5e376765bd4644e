#!/usr/bin/env -S npx tsx
// Throwaway local PostgreSQL for development: start | stop | url | reset.
//
//   npm run db -- start   start a cluster on loopback, create and migrate
//                         database `apportion`, print its DATABASE_URL
//   npm run db -- url     print the DATABASE_URL of the running cluster
//   npm run db -- reset   drop, recreate and migrate database `apportion`
//   npm run db -- stop    stop the cluster and delete its data
//
// State (port, password, data dir) is kept in .apportion/cluster.json.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startCluster, recreateDatabase, withDatabase } from './lib/cluster.js';
import { migrate } from '../orchestrator/migrate.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stateFile = path.join(root, '.apportion', 'cluster.json');

interface State { adminUrl: string; dataDir: string; binDir?: string; kind: string }

function readState(): State | undefined {
  return fs.existsSync(stateFile) ? (JSON.parse(fs.readFileSync(stateFile, 'utf8')) as State) : undefined;
}

const cmd = process.argv[2];
switch (cmd) {
  case 'start': {
    const existing = readState();
    if (existing) {
      console.log(withDatabase(existing.adminUrl, 'apportion'));
      break;
    }
    const server = await startCluster();
    if (server.kind !== 'system') {
      await server.stop();
      console.error('db start keeps a cluster running in the background, which needs the installed PostgreSQL server binaries; tests, demo and bench work without them');
      process.exit(2);
    }
    const url = await recreateDatabase(server.adminUrl, 'apportion');
    await migrate(url);
    fs.mkdirSync(path.dirname(stateFile), { recursive: true });
    fs.writeFileSync(stateFile, JSON.stringify({ adminUrl: server.adminUrl, dataDir: server.dataDir, binDir: server.binDir, kind: server.kind }, null, 2), { mode: 0o600 });
    console.log(url);
    // Keep the cluster: this process exits, the server stays until `db stop`.
    process.removeAllListeners('exit');
    process.exit(0);
  }
  // eslint-disable-next-line no-fallthrough
  case 'url': {
    const s = readState();
    if (!s) { console.error('no cluster running: npm run db -- start'); process.exit(1); }
    console.log(withDatabase(s.adminUrl, 'apportion'));
    break;
  }
  case 'reset': {
    const s = readState();
    if (!s) { console.error('no cluster running: npm run db -- start'); process.exit(1); }
    const url = await recreateDatabase(s.adminUrl, 'apportion');
    await migrate(url);
    console.log(url);
    break;
  }
  case 'stop': {
    const s = readState();
    if (!s) { console.log('no cluster running'); break; }
    const pgCtl = path.join(s.binDir ?? '', 'pg_ctl');
    const args = ['-D', path.join(s.dataDir, 'data'), '-m', 'fast', '-w', 'stop'];
    const isRoot = process.getuid?.() === 0;
    spawnSync(isRoot ? 'runuser' : pgCtl, isRoot ? ['-u', 'postgres', '--', pgCtl, ...args] : args, { stdio: 'inherit', cwd: '/' });
    fs.rmSync(s.dataDir, { recursive: true, force: true });
    fs.rmSync(stateFile);
    console.log('stopped');
    break;
  }
  default:
    console.error('usage: npm run db -- start | url | reset | stop');
    process.exit(2);
}
