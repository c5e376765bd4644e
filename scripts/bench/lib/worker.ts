// The orchestrator as every queue benchmark runs it (the queue bench and
// bench:peers): the Worker class in-process, its real code path.
import { loadConfig } from '../../../orchestrator/config.js';
import { createLogger } from '../../../orchestrator/log.js';
import { Worker } from '../../../orchestrator/worker.js';

// Two runners (one per core) fed by the claimer, 1000 jobs per claim.
// Measured with the queue bench (drains of 50,000 no-ops): batches of 2,000
// or 3 runners were no better than 1,000 and 2, only noisier.
export const CONCURRENCY = 2;
export const BATCH = 1000;

/** A Worker (not yet started) with the benchmarks' settings; `env` overrides. */
export function benchWorker(url: string, env: Record<string, string> = {}): Worker {
  const cfg = loadConfig({
    DATABASE_URL: url,
    APPORTION_CONCURRENCY: String(CONCURRENCY),
    APPORTION_BATCH_SIZE: String(BATCH),
    APPORTION_HEALTH_PORT: '-1',
    APPORTION_PING_INTERVAL_MS: '3600000',
    APPORTION_WORKER_ID: `bench-${process.pid}`,
    ...env,
  });
  return new Worker(cfg, createLogger('warn'));
}
