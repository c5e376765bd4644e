// Scale-out: a router database (PL/Proxy) in front of apportion shards
// (docs/scale-out.md). The configuration is a JSON file named by
// APPORTION_SHARDS:
//   { "router": "postgres://admin:…@host:5432/router",
//     "shards": ["postgres://admin:…@host:5432/shard0", "postgres://admin:…@host2:5432/shard1"] }
// Each URL is an administrator's (who may run migrate there). Shard n is the
// n-th URL, for good: shards are appended, never reordered. Every shard's
// administrator must use the same user and password (the router's
// `apportion_admin` server has one user mapping).
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { ConfigError } from './config.js';
import { migrate, type MigrateOptions } from './migrate.js';
import { PACKAGE_ROOT } from './paths.js';

export interface ShardsConfig {
  router: string;
  shards: string[];
}

export const ROUTER_SQL = path.join(PACKAGE_ROOT, 'router/router.sql');
/** The login the router's `apportion` server connects to the shards as. */
export const ROUTER_LOGIN = 'apportion_router_login';

export function loadShardsConfig(file: string): ShardsConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`APPORTION_SHARDS: cannot read ${file}: ${(err as Error).message}`);
  }
  const c = raw as Partial<ShardsConfig>;
  const isUrl = (u: unknown) => typeof u === 'string' && /^postgres(ql)?:\/\//.test(u);
  if (!isUrl(c.router)) throw new ConfigError(`${file}: "router" must be a postgres:// URL`);
  if (!Array.isArray(c.shards) || c.shards.length === 0 || !c.shards.every(isUrl)) {
    throw new ConfigError(`${file}: "shards" must be a non-empty array of postgres:// URLs`);
  }
  const admins = new Set(c.shards.map((u) => { const x = new URL(u); return `${x.username}:${x.password}`; }));
  if (admins.size > 1) throw new ConfigError(`${file}: every shard URL must use the same user and password`);
  return { router: c.router!, shards: c.shards };
}

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

function connstr(url: string): { host: string; port: number; dbname: string; params: [string, string][] } {
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: Number(u.port || 5432),
    dbname: decodeURIComponent(u.pathname.slice(1)),
    // sslmode, sslrootcert, … travel to the router's connections too.
    params: [...u.searchParams.entries()].filter(([k]) => /^ssl[a-z]*$|^connect_timeout$/.test(k)),
  };
}

/** A libpq keyword=value string, values quoted as libpq reads them. */
const libpq = (pairs: [string, string | number][]) =>
  pairs.map(([k, v]) => `${k}='${String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`).join(' ');

/**
 * Migrate every shard, then the router: its schema (router/router.sql), the
 * shards table, and the two PL/Proxy servers with their user mappings. The
 * router login's password is new on every run.
 */
export async function migrateShards(cfg: ShardsConfig, log: (m: string) => void = () => {}, opts: MigrateOptions = {}): Promise<{ shards: number }> {
  const password = randomBytes(18).toString('hex');
  // Refuse a configuration that drops shards before changing anything.
  const check = postgres(cfg.router, { max: 1, onnotice: () => {} });
  try {
    const [router] = await check<{ installed: boolean }[]>`
      select to_regclass('apportion_router.shards') is not null as installed`;
    const n = router!.installed ? (await check<{ n: number }[]>`select count(*)::int as n from apportion_router.shards`)[0]!.n : 0;
    if (n > cfg.shards.length) {
      throw new ConfigError(`the router has ${n} shards and the configuration names ${cfg.shards.length}: shards are never removed`);
    }
  } finally {
    await check.end();
  }
  for (const [i, url] of cfg.shards.entries()) {
    log(`shard ${i}: migrating ${connstr(url).dbname}`);
    await migrate(url, (m) => log(`shard ${i}: ${m}`), opts);
  }
  // The router login, on every server that holds a shard (roles are per server).
  const servers = new Map<string, string>();
  for (const url of cfg.shards) servers.set(`${connstr(url).host}:${connstr(url).port}`, url);
  for (const url of servers.values()) {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`do $$ begin
        if not exists (select from pg_roles where rolname = '${ROUTER_LOGIN}') then
          create role ${ROUTER_LOGIN} login nosuperuser nobypassrls nocreaterole;
        end if;
      end $$`);
      // Whatever it had before: a login under row level security, in no role above it.
      await sql.unsafe(`alter role ${ROUTER_LOGIN} login nosuperuser nobypassrls nocreaterole nocreatedb password ${quote(password)}`);
      await sql.unsafe(`do $$ begin
        if pg_has_role('${ROUTER_LOGIN}', 'apportion_owner', 'member') or pg_has_role('${ROUTER_LOGIN}', 'apportion_worker', 'member') then
          raise exception '${ROUTER_LOGIN} is a member of apportion_owner or apportion_worker; it must be neither' using errcode = '42501';
        end if;
      end $$`);
      await sql.unsafe(`grant apportion_ingest, apportion_reader, apportion_allocator to ${ROUTER_LOGIN}`);
    } finally {
      await sql.end();
    }
  }

  const router = postgres(cfg.router, { max: 1, onnotice: () => {} });
  try {
    const admin = new URL(cfg.shards[0]!);
    const partitions = cfg.shards.map((u, i) => {
      const c = connstr(u);
      return `p${i} ${quote(libpq([['host', c.host], ['port', c.port], ['dbname', c.dbname], ...c.params]))}`;
    });
    await router.begin(async (tx) => {
      await tx.unsafe(fs.readFileSync(ROUTER_SQL, 'utf8'));
      const [{ n } = { n: 0 }] = await tx<{ n: number }[]>`select count(*)::int as n from apportion_router.shards`;
      if (n > cfg.shards.length) {
        throw new ConfigError(`the router has ${n} shards and the configuration names ${cfg.shards.length}: shards are never removed`);
      }
      for (const [i, u] of cfg.shards.entries()) {
        const c = connstr(u);
        await tx`insert into apportion_router.shards (shard, host, port, dbname) values (${i}, ${c.host}, ${c.port}, ${c.dbname})
                 on conflict (shard) do update set host = excluded.host, port = excluded.port, dbname = excluded.dbname`;
      }
      for (const server of ['apportion', 'apportion_admin']) {
        await tx.unsafe(`drop server if exists ${server} cascade`);
        await tx.unsafe(`create server ${server} foreign data wrapper plproxy options (modular_mapping '1', ${partitions.join(', ')})`);
      }
      await tx.unsafe(`create user mapping for public server apportion
                         options (user ${quote(ROUTER_LOGIN)}, password ${quote(password)})`);
      await tx.unsafe(`create user mapping for apportion_owner server apportion_admin
                         options (user ${quote(decodeURIComponent(admin.username))}, password ${quote(decodeURIComponent(admin.password))})`);
      await tx.unsafe('grant usage on foreign server apportion to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator');
      await tx.unsafe('grant usage on foreign server apportion_admin to apportion_owner');
    });
    log(`router: ${cfg.shards.length} shard(s)`);
    return { shards: cfg.shards.length };
  } finally {
    await router.end();
  }
}

// ---- moving a tenant -------------------------------------------------------

/** Tables holding a tenant's rows, keyed by tenant_id (tenants itself by id). jobs and worker_failed_jobs get new ids on the target. */
const TENANT_TABLES = [
  'tenants', 'channels', 'tenant_models', 'tenant_bindings', 'touchpoints', 'attribution_events', 'refunds',
  'trained_models', 'markov_transitions', 'markov_removal_effects', 'attribution_allocations', 'allocation_history',
  'refund_allocations', 'refund_allocation_history', 'pending_allocations', 'restatement_skips',
] as const;

/** Where a move may be stopped in a test, to prove a rerun finishes it. */
export type MoveStep = 'marked' | 'locked' | 'copied' | 'verified' | 'switching' | 'committed' | 'switched' | 'cleaned';

export interface MoveOptions {
  log?: (m: string) => void;
  /** Throw right after this step (the move's open transactions are then rolled back, as if the process died). */
  failAfter?: MoveStep;
}

export interface MoveResult {
  tenant: string;
  from: number;
  to: number;
  /** Rows per table and the sums, the same on both sides when copied. */
  counts: Record<string, string>;
}

export class MoveError extends Error {}
/** A test's interruption (failAfter): left as a dead process would leave it. */
class InterruptedMove extends MoveError {}

const keyOf = (table: string) => (table === 'tenants' ? 'id' : 'tenant_id');
type Conn = postgres.Sql | postgres.ReservedSql | postgres.TransactionSql;

/** Counts and sums of a tenant's rows on one shard. */
async function fingerprint(sql: Conn, tenant: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of [...TENANT_TABLES, 'jobs', 'worker_failed_jobs']) {
    const [r] = await sql.unsafe(`select count(*)::text as n from apportion.${t} where ${keyOf(t)} = $1`, [tenant]);
    out[t] = r!.n as string;
  }
  const sums: [string, string, string][] = [
    ['attribution_events', 'revenue_cents', 'revenue'],
    ['attribution_allocations', 'allocated_revenue_cents', 'allocated'],
    ['refunds', 'amount_cents', 'refunded'],
    ['refund_allocations', 'refunded_cents', 'refund splits'],
    ['allocation_history', 'allocated_revenue_cents', 'history'],
  ];
  for (const [t, c, name] of sums) {
    const [r] = await sql.unsafe(`select coalesce(sum(${c}), 0)::text as s from apportion.${t} where tenant_id = $1`, [tenant]);
    out[`sum of ${name}`] = r!.s as string;
  }
  const [j] = await sql.unsafe(`select coalesce(string_agg(state || ' ' || n, ', ' order by state), '') as s
                                  from (select state, count(*) as n from apportion.jobs where tenant_id = $1 group by state) x`, [tenant]);
  out['jobs by state'] = j!.s as string;
  return out;
}

const differences = (a: Record<string, string>, b: Record<string, string>) =>
  Object.keys(a).filter((k) => a[k] !== b[k]).map((k) => `${k}: ${a[k]} vs ${b[k]}`);

/** Delete a tenant's rows, without triggers (the caller's transaction). */
async function deleteTenant(sql: Conn, tenant: string): Promise<void> {
  await sql.unsafe('set local session_replication_role = replica');
  for (const t of [...[...TENANT_TABLES].reverse(), 'jobs', 'worker_failed_jobs']) {
    await sql.unsafe(`delete from apportion.${t} where ${keyOf(t)} = $1`, [tenant]);
  }
}

/**
 * Copy one query's rows from the source's open transaction into a table on
 * the target's, a page at a time through a cursor, as json (to_jsonb keeps
 * numerics and microseconds exact). (postgres.js's COPY streams left the
 * source connection stalled after large copies.)
 */
async function copyRows(from: Conn, to: Conn, query: string, into: string): Promise<void> {
  await from.unsafe(`declare move_rows no scroll cursor for select to_jsonb(r)::text as row from (${query}) r`);
  for (;;) {
    const rows = await from.unsafe('fetch 2000 from move_rows');
    if (rows.length === 0) break;
    const page = `[${rows.map((r) => r.row as string).join(',')}]`;
    await to.unsafe(`insert into ${into} select * from jsonb_populate_recordset(null::${into}, $1::text::jsonb)`, [page]);
  }
  await from.unsafe('close move_rows');
}

/** Lock the tenant and its live jobs on the source, until a pass finds none added unlocked. */
async function holdSource(held: postgres.ReservedSql, tenant: string): Promise<void> {
  await held`begin`;
  // A job that runs long is waited for, not forever.
  await held`set local lock_timeout = '120s'`;
  const found = await held`select id from apportion.tenants where id = ${tenant}::uuid for update`;
  if (found.length === 0) throw new MoveError(`tenant ${tenant} is not on its source shard: nothing to move`);
  let locked = -1;
  for (;;) {
    // A job finishing meanwhile moves its row to the done partition (40001),
    // or a job waiting on the tenant row meets us (40P01): try again.
    await held`savepoint lock_jobs`;
    try {
      const rows = await held`select id from apportion.jobs where tenant_id = ${tenant}::uuid and state in ('queued', 'running') for update`;
      await held`release savepoint lock_jobs`;
      if (rows.length === locked) return;
      locked = rows.length;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== '40001' && code !== '40P01') throw err;
      await held`rollback to savepoint lock_jobs`;
    }
  }
}

/** What must hold before a move starts: superusers on both shards, one schema, the tenant's model versions on the target, no bindings. */
async function preflight(source: postgres.Sql, target: postgres.Sql, tenant: string, from: number, to: number): Promise<void> {
  const schema: number[] = [];
  for (const [sql, n] of [[source, from], [target, to]] as const) {
    const [me] = await sql<{ su: boolean; v: number }[]>`
      select (select rolsuper from pg_roles where rolname = current_user) as su, apportion.schema_version() as v`;
    if (!me!.su) throw new MoveError(`shard ${n}: moving a tenant needs a superuser (its rows are copied and deleted without triggers)`);
    schema.push(me!.v);
  }
  if (schema[0] !== schema[1]) throw new MoveError(`shard ${from} has schema ${schema[0]} and shard ${to} schema ${schema[1]}: migrate both first`);
  const versions = (await source<{ v: string }[]>`
    select model_version as v from apportion.tenant_models where tenant_id = ${tenant}::uuid
    union select distinct model_version from apportion.attribution_allocations where tenant_id = ${tenant}::uuid
    union select model_version from apportion.trained_models where tenant_id = ${tenant}::uuid
    union select distinct model_version from apportion.pending_allocations where tenant_id = ${tenant}::uuid`).map((r) => r.v);
  const known = new Set((await target<{ v: string }[]>`
    select model_version as v from apportion.attribution_models where model_version = any (${versions}::text[])`).map((r) => r.v));
  const missing = versions.filter((v) => !known.has(v));
  if (missing.length > 0) throw new MoveError(`shard ${to} lacks model versions ${missing.join(', ')}: register them through the router first`);
  const bound = await source<{ login: string }[]>`
    select login::regrole::text as login from apportion.tenant_bindings where tenant_id = ${tenant}::uuid`;
  if (bound.length > 0) {
    throw new MoveError(`tenant ${tenant} has logins bound to it on shard ${from} (${bound.map((b) => b.login).join(', ')}): ` +
      'bindings restrict a login per server, and moving them could widen what it may do; unbind them, move, and bind them on the target');
  }
}

/** In the target's open transaction: remove any earlier copy, copy the tenant from the held source, jobs with new ids. */
async function copyTenant(held: postgres.ReservedSql, target: postgres.ReservedSql, tenant: string): Promise<void> {
  await deleteTenant(target, tenant);
  for (const t of TENANT_TABLES) {
    await copyRows(held, target, `select * from apportion.${t} where ${keyOf(t)} = '${tenant}'`, `apportion.${t}`);
  }
  await target.unsafe('create temp table move_jobs (like apportion.jobs) on commit drop');
  await target.unsafe('create temp table move_failures (like apportion.worker_failed_jobs) on commit drop');
  await copyRows(held, target, `select * from apportion.jobs where tenant_id = '${tenant}'`, 'move_jobs');
  await copyRows(held, target, `select * from apportion.worker_failed_jobs where tenant_id = '${tenant}'`, 'move_failures');
  await target.unsafe(`create temp table move_job_ids on commit drop as
                         select id as old_id, nextval('apportion.jobs_id_seq') as new_id from move_jobs order by id`);
  const cols = async (table: string, skip: string[]) =>
    (await target<{ c: string }[]>`select attname::text as c from pg_attribute
                                     where attrelid = ${`apportion.${table}`}::regclass and attnum > 0 and not attisdropped
                                     order by attnum`).map((r) => r.c).filter((c) => !skip.includes(c));
  const jobCols = await cols('jobs', ['id']);
  await target.unsafe(`insert into apportion.jobs (id, ${jobCols.join(', ')})
                         select m.new_id, ${jobCols.map((c) => `j.${c}`).join(', ')}
                           from move_jobs j join move_job_ids m on m.old_id = j.id`);
  const failureCols = await cols('worker_failed_jobs', ['id', 'job_id', 'replayed_job_id']);
  await target.unsafe(`insert into apportion.worker_failed_jobs (job_id, replayed_job_id, ${failureCols.join(', ')})
                         select coalesce(m.new_id, f.job_id), coalesce(r.new_id, f.replayed_job_id), ${failureCols.map((c) => `f.${c}`).join(', ')}
                           from move_failures f
                           left join move_job_ids m on m.old_id = f.job_id
                           left join move_job_ids r on r.old_id = f.replayed_job_id`);
  // The copy ran without triggers: wake the target's orchestrator for the queued jobs.
  await target`select pg_notify('apportion_jobs', q.queue) from (select distinct queue from move_jobs where state = 'queued') q`;
}

/**
 * Move a tenant to another shard with everything it has: ingest data,
 * allocations and their history, refunds and their splits, trained models,
 * pending work and jobs (new job ids on the target; failures follow their
 * jobs). Steps, with the state kept in apportion_router.moves:
 *   0. checks: superusers on both shards, one schema version, the tenant's
 *      model versions on the target, no login bound to the tenant; one move
 *      of a tenant at a time (a session lock on the router);
 *   1. mark it moving on the router (an update of its placement row, which
 *      waits for routed calls in flight: they hold it FOR SHARE): its calls
 *      get 55006 from then on;
 *   2. on the source, lock the tenant and its live jobs in a transaction
 *      held to the end (its orchestrator can neither claim nor run them);
 *   3. on the target, in one transaction: remove any earlier copy, copy
 *      every row, compare counts and sums with the source;
 *   4. router: placement to the target, still refusing calls ('switching'),
 *      with the verified counts and sums;
 *   5. commit the target; 6. router: calls flow to the target ('switched');
 *   7. delete the source copy, if it still matches what was verified, and
 *      commit; 8. forget the move.
 * A failure before 4 undoes the move (the tenant stays where it was). After
 * an interruption (the process or a server gone), run it again: before 4 it
 * starts over from the intact source; at 'switching' it finds whether the
 * target committed (same counts and sums as the source) and copies again if
 * not; at 'switched' it only deletes the source copy. Nothing is lost or
 * left twice. Jobs are idempotent: one that ran on the target before an
 * interrupted move finished may run again after it.
 */
export async function moveTenant(cfg: ShardsConfig, tenantArg: string, to: number, opts: MoveOptions = {}): Promise<MoveResult> {
  const log = opts.log ?? (() => {});
  const fail = (step: MoveStep) => {
    if (opts.failAfter === step) throw new InterruptedMove(`move interrupted after step ${step} (as asked)`);
  };
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(tenantArg)) throw new MoveError(`'${tenantArg}' is not a tenant id (uuid)`);
  const tenant = tenantArg.toLowerCase();
  if (!Number.isInteger(to) || to < 0 || to >= cfg.shards.length) {
    throw new MoveError(`shard ${to} is not in the configuration (0..${cfg.shards.length - 1})`);
  }
  const router = postgres(cfg.router, { max: 1, onnotice: () => {} });
  const shards = cfg.shards.map((u) => postgres(u, { max: 2, onnotice: () => {}, connection: { TimeZone: 'UTC' } }));
  const reserved: postgres.ReservedSql[] = [];
  const reserve = async (sql: postgres.Sql) => {
    const r = await sql.reserve();
    reserved.push(r);
    return r;
  };
  /** One router transaction that locks the placement row (waiting for routed calls in flight) and expects the move at `expect`. */
  const routerStep = (expect: string | null, update: (tx: postgres.TransactionSql) => Promise<unknown>) =>
    router.begin(async (tx) => {
      await tx`select 1 from apportion_router.placement where tenant_id = ${tenant}::uuid for update`;
      const [m] = await tx<{ step: string }[]>`select step from apportion_router.moves where tenant_id = ${tenant}::uuid`;
      if ((m?.step ?? null) !== expect) throw new MoveError(`tenant ${tenant}: the move is at ${m?.step ?? 'no step'}, expected ${expect ?? 'none'}: another run changed it`);
      await update(tx);
    });
  try {
    const [lock] = await router<{ ok: boolean }[]>`select pg_try_advisory_lock(hashtextextended('apportion move ' || ${tenant}, 0)) as ok`;
    if (!lock!.ok) throw new MoveError(`another move of tenant ${tenant} is running`);
    const [placed] = await router<{ shard: number; moving_to: number | null }[]>`
      select shard, moving_to from apportion_router.placement where tenant_id = ${tenant}::uuid`;
    if (!placed) throw new MoveError(`tenant ${tenant} is not placed on any shard`);
    const [move] = await router<{ from_shard: number; to_shard: number; step: string; verified: Record<string, string> | null }[]>`
      select from_shard, to_shard, step, verified from apportion_router.moves where tenant_id = ${tenant}::uuid`;
    if (move && move.to_shard !== to) {
      throw new MoveError(`tenant ${tenant} has an unfinished move to shard ${move.to_shard}: finish it first`);
    }
    if (!move && placed.shard === to) throw new MoveError(`tenant ${tenant} is on shard ${to} already`);
    const from = move ? move.from_shard : placed.shard;
    const source = shards[from]!;
    const target = shards[to]!;
    let step = move?.step ?? 'none';
    let verified = move?.verified ?? null;
    let held: postgres.ReservedSql | undefined;

    if (step === 'switching') {
      // Did the target commit before the interruption?
      if (verified && differences(verified, await fingerprint(target, tenant)).length === 0) step = 'committed';
    }
    if (step === 'none' || step === 'copying' || step === 'switching') {
      if (step === 'none') {
        await preflight(source, target, tenant, from, to);
        await routerStep(null, async (tx) => {
          await tx`update apportion_router.placement set moving_to = ${to} where tenant_id = ${tenant}::uuid`;
          await tx`insert into apportion_router.moves (tenant_id, from_shard, to_shard, step) values (${tenant}::uuid, ${from}, ${to}, 'copying')`;
        });
        step = 'copying';
        log(`tenant ${tenant}: moving from shard ${from} to shard ${to}; calls for it wait`);
      }
      try {
        fail('marked');
        held = await reserve(source);
        log(`tenant ${tenant}: locking its live jobs on shard ${from}`);
        await holdSource(held, tenant);
        fail('locked');
        log(`tenant ${tenant}: copying to shard ${to}`);
        const into = await reserve(target);
        await into`begin`;
        await copyTenant(held, into, tenant);
        fail('copied');
        const [a, b] = [await fingerprint(held, tenant), await fingerprint(into, tenant)];
        const differ = differences(a, b);
        if (differ.length > 0) throw new MoveError(`tenant ${tenant}: the copy on shard ${to} differs from shard ${from} (${differ.join('; ')})`);
        verified = a;
        log(`tenant ${tenant}: copied to shard ${to} and verified (${a.attribution_events} events, ${a.attribution_allocations} allocation rows)`);
        fail('verified');
        await routerStep(step, async (tx) => {
          await tx`update apportion_router.placement set shard = ${to} where tenant_id = ${tenant}::uuid`;
          await tx`update apportion_router.moves set step = 'switching', verified = ${tx.json(a)} where tenant_id = ${tenant}::uuid`;
        });
        step = 'switching';
      } catch (err) {
        // Before the placement moved, a failure undoes the move: the source is intact.
        if (!(err instanceof InterruptedMove) && step === 'copying') {
          for (const r of reserved) await r`rollback`.catch(() => {});
          await target.begin((tx) => deleteTenant(tx, tenant)).catch(() => {});
          await routerStep('copying', async (tx) => {
            await tx`update apportion_router.placement set shard = ${from}, moving_to = null where tenant_id = ${tenant}::uuid`;
            await tx`delete from apportion_router.moves where tenant_id = ${tenant}::uuid`;
          }).catch(() => {});
          throw new MoveError(`${(err as Error).message}; the move was undone, tenant ${tenant} stays on shard ${from}`);
        }
        throw err;
      }
      fail('switching');
      await reserved[reserved.length - 1]!`commit`;
      step = 'committed';
      fail('committed');
    }
    if (step === 'committed') {
      await routerStep('switching', async (tx) => {
        await tx`update apportion_router.placement set shard = ${to}, moving_to = null where tenant_id = ${tenant}::uuid`;
        await tx`update apportion_router.moves set step = 'switched' where tenant_id = ${tenant}::uuid`;
      });
      log(`tenant ${tenant}: placed on shard ${to}; calls flow there`);
      fail('switched');
      step = 'switched';
    }
    // The source copy goes, if it is still what was verified (in the held
    // transaction, or a new one on a resumed move).
    const counts = verified ?? (await fingerprint(target, tenant));
    const removeSource = async (sql: Conn) => {
      const now = await fingerprint(sql, tenant);
      const gone = Object.entries(now).every(([k, v]) => v === '0' || v === '' || k.startsWith('sum of') && v === '0');
      if (gone) return; // deleted already, before an interruption
      const differ = differences(counts, now);
      if (differ.length > 0) {
        throw new MoveError(`tenant ${tenant}: shard ${from} changed after its copy was verified (${differ.join('; ')}); ` +
          `it is left there for inspection (the tenant is served by shard ${to})`);
      }
      await deleteTenant(sql, tenant);
    };
    if (held) {
      await removeSource(held);
      await held`commit`;
    } else {
      await source.begin((tx) => removeSource(tx));
    }
    log(`tenant ${tenant}: removed from shard ${from}`);
    fail('cleaned');
    await routerStep('switched', (tx) => tx`delete from apportion_router.moves where tenant_id = ${tenant}::uuid`);
    return { tenant, from, to, counts };
  } finally {
    // An open transaction left by an interruption is rolled back, as a dead process's would be.
    for (const r of reserved) {
      await r`rollback`.catch(() => {});
      r.release();
    }
    await router.end();
    for (const s of shards) await s.end();
  }
}
