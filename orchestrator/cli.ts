// apportion CLI: worker | enqueue | ping | status | failed | migrate.
// Connection and worker settings come from the environment (config.ts).
import { parseArgs } from 'node:util';
import { loadConfig } from './config.js';
import { connect, isDriverWriteBug } from './db.js';
import { startHealthServer, serverPort } from './health.js';
import { createLogger } from './log.js';
import { migrate, migrateOptionsFromEnv } from './migrate.js';
import { PrivilegedRoleError } from './role.js';
import { enqueue, jobStatus, openFailures, queueOverview, replayFailedJob } from './queue.js';
import { SchemaVersionError } from './schema.js';
import { Worker } from './worker.js';

const USAGE = `usage: apportion <command> [options]

  worker                          run the orchestrator until SIGTERM/SIGINT
  enqueue <queue> <task> [json]   enqueue a job (--tenant <uuid>, --correlation-id <uuid>)
  ping                            readiness round trip through the queue (needs a running worker)
  status                          queue depths, oldest waiting job, recent failures
  failed [list]                   open failures (--correlation-id <uuid> to filter)
  failed replay <job_id>          replay one failed job
  failed replay --correlation-id <uuid>   replay every open failure with that correlation id
  migrate                         install or upgrade apportion in DATABASE_URL

environment: DATABASE_URL (required), APPORTION_LISTEN_URL, APPORTION_QUEUES, APPORTION_CONCURRENCY,
APPORTION_BATCH_SIZE, APPORTION_POLL_INTERVAL_MS, APPORTION_LEASE_SECONDS, APPORTION_SHUTDOWN_TIMEOUT_MS,
APPORTION_HEALTH_HOST, APPORTION_HEALTH_PORT, APPORTION_PING_INTERVAL_MS, APPORTION_PRUNE_INTERVAL_MS,
APPORTION_RETENTION, APPORTION_PREPARE, APPORTION_WORKER_ID, LOG_LEVEL (see README)`;

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2);

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      'correlation-id': { type: 'string' },
      timeout: { type: 'string', default: '5000' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, ...rest] = positionals;
  if (!command || values.help) {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  const cfg = loadConfig();

  if (command === 'migrate') {
    await migrate(cfg.databaseUrl, (m) => console.log(m), migrateOptionsFromEnv());
    return 0;
  }

  if (command === 'worker') {
    const log = createLogger(cfg.logLevel);
    const worker = new Worker(cfg, log);
    // postgres.js can throw from a timer when it writes to a connection cut
    // under it (see db.ts): that pool is replaced; anything else still
    // ends the process, as it would without this handler.
    process.on('uncaughtException', (err) => {
      if (isDriverWriteBug(err)) {
        log.error({ err: String(err) }, 'the database driver wrote to a closed connection');
        worker.replaceConnections('the driver wrote to a closed connection');
        return;
      }
      log.fatal({ err: String(err), stack: (err as Error)?.stack }, 'uncaught exception');
      log.flush();
      process.exit(1);
    });
    // Health first: while the worker waits for an unreachable database,
    // /livez says it runs and /readyz that it is not ready.
    if (cfg.healthPort >= 0) {
      const server = await startHealthServer(worker, cfg.healthHost, cfg.healthPort);
      log.info({ host: cfg.healthHost, port: serverPort(server) }, 'health endpoint listening');
    }
    const stopped = new Promise<void>((resolve) => {
      const stop = (signal: string) => void worker.stop(signal).then(resolve);
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await worker.start();
    await stopped;
    log.flush();
    return 0;
  }

  const sql = connect(cfg.databaseUrl, { max: 2, prepare: cfg.prepare });
  try {
    switch (command) {
      case 'enqueue': {
        const [queue, task, payload = '{}'] = rest;
        if (!queue || !task) throw new UsageError('enqueue needs <queue> <task> [json payload]');
        let parsed: unknown;
        try {
          parsed = JSON.parse(payload);
        } catch {
          throw new UsageError(`payload is not valid JSON: ${payload}`);
        }
        const id = await enqueue(sql, queue, task, parsed, { tenantId: values.tenant ?? null, correlationId: values['correlation-id'] ?? null });
        console.log(json({ job_id: id }));
        return 0;
      }
      case 'ping': {
        const started = performance.now();
        const id = await enqueue(sql, 'housekeeping', 'ping', {});
        const deadline = Date.now() + Number(values.timeout);
        for (;;) {
          const s = await jobStatus(sql, id);
          if (s?.state === 'succeeded') {
            console.log(json({ status: 'ok', job_id: id, round_trip_ms: Number((performance.now() - started).toFixed(2)), result: s.result }));
            return 0;
          }
          if (s?.state === 'failed' || Date.now() > deadline) {
            console.error(json({ status: 'fail', job_id: id, state: s?.state, error: s?.error_message ?? `no worker finished the ping within ${values.timeout} ms` }));
            return 1;
          }
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      case 'status': {
        const queues = await queueOverview(sql);
        const failures = await openFailures(sql, null, 10);
        console.log(json({ queues, recent_failures: failures }));
        return 0;
      }
      case 'failed': {
        const [sub = 'list', jobId] = rest;
        const correlation = values['correlation-id'] ?? null;
        if (sub === 'list') {
          console.log(json(await openFailures(sql, correlation, 100)));
          return 0;
        }
        if (sub === 'replay') {
          const all = await openFailures(sql, correlation, 1000);
          const targets = jobId ? all.filter((f) => String(f.job_id) === jobId) : correlation ? all : [];
          if (targets.length === 0) throw new UsageError(jobId ? `no open failure for job ${jobId}` : 'failed replay needs <job_id> or --correlation-id <uuid>');
          const replayed = [];
          for (const f of targets) replayed.push({ failed_job_id: f.job_id, new_job_id: await replayFailedJob(sql, f) });
          console.log(json(replayed));
          return 0;
        }
        throw new UsageError(`unknown failed subcommand '${sub}'`);
      }
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (err instanceof SchemaVersionError || err instanceof PrivilegedRoleError) {
      // EX_CONFIG: nothing to retry until the database or the orchestrator changes.
      console.error(`apportion: ${err.message}`);
      process.exit(78);
    }
    const e = err as { message?: string; code?: string };
    console.error(`apportion: ${e.message ?? String(err)}${e.code ? ` (SQLSTATE ${e.code})` : ''}`);
    process.exit(1);
  },
);
