// What every benchmark entry does around its measurements: read its numeric
// flags, and run on a migrated throwaway database (or DATABASE_URL).
import { acquireDatabase } from '../../lib/cluster.js';
import { migrate } from '../../../orchestrator/migrate.js';

/** `name N` from `args`, a number >= 1, or `fallback` when absent; exits 2 otherwise. */
export function numberFlag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(args[i + 1]);
  if (!(v >= 1)) {
    console.error(`${name} needs a number >= 1`);
    process.exit(2);
  }
  return v;
}

/**
 * Acquire database `name` (without DATABASE_URL, a throwaway cluster with
 * durable settings, not the tests' fast mode, and commit timestamps), migrate it, run `body` on its
 * URL, release it, and exit: 0, or 1 after printing what `body` threw.
 */
export async function runOnBenchDatabase(name: string, body: (url: string) => Promise<void>): Promise<never> {
  // Commit timestamps let latencies be measured from commit to commit.
  const target = await acquireDatabase(name, { settings: { track_commit_timestamp: 'on' } });
  let failed = false;
  try {
    await migrate(target.url);
    await body(target.url);
  } catch (err) {
    console.error(err);
    failed = true;
  } finally {
    await target.release();
  }
  process.exit(failed ? 1 : 0);
}
