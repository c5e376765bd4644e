// apportion CLI: worker | migrate | test | enqueue | ping | status | failed | tenant move.
// Connection and worker settings come from the environment (config.ts).
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { connect, isDriverWriteBug } from './db.js';
import { startHealthServer, serverPort } from './health.js';
import { createLogger } from './log.js';
import { migrate, migrateOptionsFromEnv } from './migrate.js';
import { table, toJson, type Row } from './output.js';
import { PrivilegedRoleError } from './role.js';
import { runSelfTest, SelfTestSetupError } from './selftest.js';
import { loadShardsConfig, migrateShards, moveTenant } from './shards.js';
import { enqueue, jobStatus, openFailures, pendingAllocationsOverview, queueOverview, replayFailedJob } from './queue.js';
import { SchemaVersionError } from './schema.js';
import { Worker } from './worker.js';

const USAGE = `usage: apportion <command> [options]

  worker                          run the orchestrator until SIGTERM/SIGINT (then exit 0)
  migrate                         install or upgrade apportion in DATABASE_URL (with APPORTION_SHARDS: a router and its shards)
  test [file.sql ...]             run apportion's pgTAP suite against DATABASE_URL (a superuser; --verbose: every TAP line)
  enqueue <queue> <task> [json]   enqueue a job (--tenant <uuid> for tenant tasks, --correlation-id <uuid>)
  ping                            readiness round trip through the queue (needs a running worker; --timeout <ms>)
  status                          queue depths, oldest runnable job, pending allocations, recent failures
  failed [list]                   open failures (--correlation-id <uuid> to filter)
  failed replay <job_id>          replay one failed job
  failed replay --correlation-id <uuid>   replay every open failure with that correlation id
  tenant move <tenant> <shard>    move a tenant and all its data to another shard (needs APPORTION_SHARDS)

options: --json (machine-readable output: numbers as numbers), -h/--help

exit codes: 0 done; 1 the command failed (a test failed, a ping timed out, a database error);
2 usage (a missing or unknown argument: the message names it); 78 configuration (schema version,
a privileged role, a missing tool or extension: nothing to retry until that changes)

environment: DATABASE_URL (required), APPORTION_LISTEN_URL, APPORTION_QUEUES, APPORTION_CONCURRENCY,
APPORTION_BATCH_SIZE, APPORTION_POLL_INTERVAL_MS, APPORTION_LEASE_SECONDS, APPORTION_SHUTDOWN_TIMEOUT_MS,
APPORTION_HEALTH_HOST, APPORTION_HEALTH_PORT, APPORTION_PING_INTERVAL_MS, APPORTION_PRUNE_INTERVAL_MS,
APPORTION_RETENTION, APPORTION_PREPARE, APPORTION_WORKER_ID, APPORTION_DASHBOARD, APPORTION_DASHBOARD_TOKEN,
LOG_LEVEL (see README)`;

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        tenant: { type: 'string' },
        'correlation-id': { type: 'string' },
        timeout: { type: 'string', default: '5000' },
        json: { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    // parseArgs names the unknown option or the one missing its value.
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!command) {
    console.error(USAGE);
    return 2;
  }
  if (!COMMANDS.includes(command)) throw new UsageError(`unknown command '${command}'`);
  const out = (human: string, machine: unknown) => console.log(values.json ? toJson(machine) : human);
  const timeoutMs = Number(values.timeout);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new UsageError(`--timeout must be a positive number of milliseconds (got '${values.timeout}')`);
  }
  if (command === 'migrate' && process.env.APPORTION_SHARDS) {
    // A router and its shards, from one configuration (shards.ts).
    const result = await migrateShards(loadShardsConfig(process.env.APPORTION_SHARDS), (m) => values.json || console.log(m), migrateOptionsFromEnv());
    if (values.json) console.log(toJson(result));
    return 0;
  }
  if (command === 'tenant') {
    const [sub, tenant, shard, ...extra] = rest;
    if (sub !== 'move') throw new UsageError(`tenant needs a subcommand: move (got '${sub ?? ''}')`);
    if (!tenant || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenant)) {
      throw new UsageError('tenant move needs <tenant uuid> <shard number>: <tenant uuid> is missing or not a uuid');
    }
    if (shard === undefined || !/^\d+$/.test(shard)) throw new UsageError('tenant move needs <tenant uuid> <shard number>: <shard number> is missing');
    if (extra.length > 0) throw new UsageError(`tenant move takes two arguments; unexpected: ${extra.join(' ')}`);
    if (!process.env.APPORTION_SHARDS) throw new ConfigError('tenant move needs APPORTION_SHARDS (the router and shards configuration)');
    const shards = loadShardsConfig(process.env.APPORTION_SHARDS);
    if (Number(shard) >= shards.shards.length) {
      throw new UsageError(`tenant move: shard ${shard} is not in the configuration (0..${shards.shards.length - 1})`);
    }
    const result = await moveTenant(shards, tenant, Number(shard), {
      log: (m) => values.json || console.log(m),
    });
    out(`moved tenant ${result.tenant} from shard ${result.from} to shard ${result.to}\n${table(Object.entries(result.counts).map(([what, value]) => ({ what, value })))}`, result);
    return 0;
  }
  const cfg = loadConfig();

  if (command === 'migrate') {
    const result = await migrate(cfg.databaseUrl, (m) => values.json || console.log(m), migrateOptionsFromEnv());
    if (values.json) console.log(toJson(result));
    else if (result.migrations.length === 0 && result.sources.length === 0) console.log('apportion is up to date; nothing to do');
    return 0;
  }

  if (command === 'test') {
    return (await runSelfTest(cfg.databaseUrl, { verbose: values.verbose, files: rest })) ? 0 : 1;
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
        const [queue, task, payload = '{}', ...extra] = rest;
        if (!queue) throw new UsageError('enqueue needs <queue> <task> [json payload]: <queue> is missing');
        if (!task) throw new UsageError('enqueue needs <queue> <task> [json payload]: <task> is missing');
        if (extra.length > 0) throw new UsageError(`enqueue takes one json payload; unexpected: ${extra.join(' ')}`);
        let body: unknown;
        try {
          body = JSON.parse(payload);
        } catch {
          throw new UsageError(`payload is not valid JSON: ${payload}`);
        }
        const scope = await taskScope(sql, queue, task);
        if (scope === undefined) throw new UsageError(`no task ${queue}.${task} is registered (see apportion.queue_tasks)`);
        if (scope === 'tenant' && !values.tenant) throw new UsageError(`${queue}.${task} runs for a tenant: pass --tenant <uuid>`);
        if (scope === 'system' && values.tenant) throw new UsageError(`${queue}.${task} is a system task: drop --tenant`);
        const id = await enqueue(sql, queue, task, body, { tenantId: values.tenant ?? null, correlationId: values['correlation-id'] ?? null });
        out(`enqueued job ${id} (${queue}.${task}${values.tenant ? `, tenant ${values.tenant}` : ''})`, { job_id: id });
        return 0;
      }
      case 'ping': {
        const started = performance.now();
        const id = await enqueue(sql, 'housekeeping', 'ping', {});
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const s = await jobStatus(sql, id);
          if (s?.state === 'succeeded') {
            const ms = Number((performance.now() - started).toFixed(2));
            out(`ok: ping job ${id} made the round trip in ${ms} ms`, { status: 'ok', job_id: id, round_trip_ms: ms, result: s.result });
            return 0;
          }
          if (s?.state === 'failed' || Date.now() > deadline) {
            const error = s?.error_message ?? `no worker finished the ping within ${timeoutMs} ms`;
            if (values.json) console.log(toJson({ status: 'fail', job_id: id, state: s?.state, error }));
            else console.error(`fail: ping job ${id} (${s?.state ?? 'unknown'}): ${error}`);
            return 1;
          }
          await new Promise((r) => setTimeout(r, 1));
        }
      }
      case 'status': {
        const queues = await queueOverview(sql);
        const pending = await pendingAllocationsOverview(sql);
        const failures = await openFailures(sql, null, 10);
        out(`${table(queues as unknown as Row[], QUEUE_COLUMNS)}\n\npending allocations:\n${table(pending as unknown as Row[])}` +
          `\n\nrecent failures:\n${table(failures as unknown as Row[], FAILURE_COLUMNS)}`,
          { queues, pending_allocations: pending, recent_failures: failures });
        return 0;
      }
      case 'failed': {
        const [sub = 'list', jobId] = rest;
        const correlation = values['correlation-id'] ?? null;
        if (sub === 'list') {
          const failures = await openFailures(sql, correlation, 100);
          out(table(failures as unknown as Row[], FAILURE_COLUMNS), failures);
          return 0;
        }
        if (sub === 'replay') {
          if (!jobId && !correlation) throw new UsageError('failed replay needs <job_id> or --correlation-id <uuid>');
          const all = await openFailures(sql, correlation, 1000);
          const targets = jobId ? all.filter((f) => String(f.job_id) === jobId) : all;
          if (targets.length === 0) {
            throw new UsageError(jobId ? `no open failure for job ${jobId}` : `no open failure with correlation id ${correlation}`);
          }
          const replayed = [];
          for (const f of targets) replayed.push({ failed_job_id: f.job_id, new_job_id: await replayFailedJob(sql, f) });
          out(table(replayed), replayed);
          return 0;
        }
        throw new UsageError(`unknown failed subcommand '${sub}' (list, replay)`);
      }
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}

const COMMANDS = ['worker', 'migrate', 'test', 'enqueue', 'ping', 'status', 'failed', 'tenant'];
const QUEUE_COLUMNS = ['queue', 'queued', 'queued_runnable', 'running', 'oldest_runnable_seconds', 'open_failures'];
const FAILURE_COLUMNS = ['job_id', 'tenant_id', 'queue', 'task', 'error_code', 'error_message', 'attempts', 'correlation_id', 'failed_at'];

/** The registered task's tenant scope ('tenant', 'system', 'any'), or undefined when there is none. */
async function taskScope(sql: ReturnType<typeof connect>, queue: string, task: string): Promise<string | undefined> {
  const rows = await sql<{ tenant_scope: string }[]>`
    select tenant_scope from apportion.queue_tasks where queue = ${queue} and task = ${task}`;
  return rows[0]?.tenant_scope;
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (err instanceof SchemaVersionError || err instanceof PrivilegedRoleError || err instanceof SelfTestSetupError || err instanceof ConfigError) {
      // EX_CONFIG: nothing to retry until the database or the orchestrator changes.
      console.error(`apportion: ${err.message}`);
      process.exit(78);
    }
    const e = err as { message?: string; code?: string };
    console.error(`apportion: ${e.message ?? String(err)}${e.code ? ` (SQLSTATE ${e.code})` : ''}`);
    process.exit(1);
  },
);
