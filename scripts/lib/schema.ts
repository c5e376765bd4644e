// The schema snapshot: a normalised `pg_dump --schema-only` of apportion's
// schemas as a fresh install leaves them, committed as test/schema.sql so
// that every change shows the schema it produces (leftovers included).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findSystemBinDir } from './cluster.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SNAPSHOT = path.join(root, 'test', 'schema.sql');

function pgDump(): string {
  const binDir = process.env.APPORTION_PG_BINDIR ?? findSystemBinDir();
  const candidate = binDir ? path.join(binDir, 'pg_dump') : 'pg_dump';
  if (binDir && !fs.existsSync(candidate)) throw new Error(`pg_dump not found in ${binDir}`);
  return candidate;
}

/**
 * Schemas apportion and apportion_internal, without owners (the catalog
 * scans check those), COMMENT ON (docs/sql-api.md shows and checks those),
 * comment lines, SET lines or the server's version, so the text depends
 * only on what migrations and db/ define.
 */
export function dumpSchema(url: string): string {
  const res = spawnSync(pgDump(), ['--schema-only', '--no-owner', '--no-comments', '--schema=apportion', '--schema=apportion_internal', url], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`pg_dump failed: ${res.stderr || res.error}`);
  const lines = res.stdout
    .split('\n')
    // (\restrict and \unrestrict carry a random key per dump.)
    .filter((l) => !l.startsWith('--') && !/^SET /.test(l) && !/^SELECT pg_catalog\.set_config/.test(l) && !/^\\(un)?restrict /.test(l));
  return lines.join('\n').replace(/\n{3,}/g, '\n\n').trim() + '\n';
}

/** A unified diff of the committed snapshot against `actual`, or '' when equal. */
export function diffSnapshot(actual: string): string {
  const expected = fs.existsSync(SNAPSHOT) ? fs.readFileSync(SNAPSHOT, 'utf8') : '';
  if (expected === actual) return '';
  const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'apportion-schema-')), 'fresh-install.sql');
  fs.writeFileSync(tmp, actual);
  const res = spawnSync('diff', ['-u', '--label', 'test/schema.sql', '--label', 'fresh install', SNAPSHOT, tmp], { encoding: 'utf8' });
  fs.rmSync(path.dirname(tmp), { recursive: true, force: true });
  return res.stdout || 'test/schema.sql differs from a fresh install';
}
