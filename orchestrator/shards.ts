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

function connstr(url: string): { host: string; port: number; dbname: string } {
  const u = new URL(url);
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 5432), dbname: decodeURIComponent(u.pathname.slice(1)) };
}

/**
 * Migrate every shard, then the router: its schema (router/router.sql), the
 * shards table, and the two PL/Proxy servers with their user mappings. The
 * router login's password is new on every run.
 */
export async function migrateShards(cfg: ShardsConfig, log: (m: string) => void = () => {}, opts: MigrateOptions = {}): Promise<{ shards: number }> {
  const password = randomBytes(18).toString('hex');
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
      await sql.unsafe(`alter role ${ROUTER_LOGIN} login password ${quote(password)}`);
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
      return `p${i} ${quote(`host=${c.host} port=${c.port} dbname=${c.dbname}`)}`;
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
