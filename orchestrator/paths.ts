// Where apportion's own files are: the package root holds migrations/, db/
// and pgtap-tests/, whether this module runs from source (orchestrator/*.ts
// under tsx) or compiled (dist/orchestrator/*.js in the installed package).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && fs.existsSync(path.join(dir, 'migrations'))) {
      const { name } = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string };
      if (name === 'apportion') return dir;
    }
    if (path.dirname(dir) === dir) throw new Error(`apportion's package root (with migrations/) not found above ${from}`);
  }
}

export const PACKAGE_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
export const MIGRATIONS_DIR = path.join(PACKAGE_ROOT, 'migrations');
export const DB_SOURCES_DIR = path.join(PACKAGE_ROOT, 'db');
export const PGTAP_DIR = path.join(PACKAGE_ROOT, 'pgtap-tests');
