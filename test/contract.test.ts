// The SQL contract as the code and the docs state it: the result types in
// orchestrator/queue.ts against the functions they read, README's function
// tables against the catalog (names and who may call them), the schema
// version the orchestrator checks, the roles it refuses to run as, and
// migrate's removal of what db/ no longer defines and its bounded wait for
// its lock.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../orchestrator/config.js';
import { createLogger } from '../orchestrator/log.js';
import { migrate } from '../orchestrator/migrate.js';
import { SCHEMA_VERSION } from '../orchestrator/schema.js';
import { Worker } from '../orchestrator/worker.js';
import { loginRoleUrl } from '../scripts/lib/roles.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';
import { CURRENCY_MIGRATION, isoCurrencies, migrationText } from '../scripts/currencies.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

let db: TestDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  db = await testDatabase('contract');
  sql = postgres(db.url, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

/** Result columns of a function, in order: its TABLE columns, or the attributes of its SETOF composite. */
async function resultColumns(signature: string): Promise<{ name: string; type: string }[]> {
  return sql<{ name: string; type: string }[]>`
    with p as (select * from pg_proc where oid = ${signature}::regprocedure)
    select a.name, format_type(a.type, null) as type
      from p, unnest(p.proargnames, p.proallargtypes, p.proargmodes) with ordinality as a (name, type, mode, i)
     where a.mode = 't'
    union all
    select at.attname, format_type(at.atttypid, null)
      from p join pg_type t on t.oid = p.prorettype join pg_attribute at on at.attrelid = t.typrelid
     where p.proargmodes is null and at.attnum > 0 and not at.attisdropped`;
}

/** The properties of an exported type of orchestrator/queue.ts, with what each admits besides null. */
function typeScriptFields(program: ts.Program, name: string): { name: string; type: string }[][] {
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(path.join(root, 'orchestrator/queue.ts'))!;
  const symbol = checker.getExportsOfModule(checker.getSymbolAtLocation(file)!).find((s) => s.name === name);
  if (!symbol) throw new Error(`orchestrator/queue.ts exports no ${name}`);
  const type = checker.getDeclaredTypeOfSymbol(symbol);
  const variants = type.isUnion() ? type.types : [type];
  return variants.map((v) =>
    checker.getPropertiesOfType(v).map((p) => {
      const t = checker.getTypeOfSymbol(p);
      const parts = (t.isUnion() ? t.types : [t]).filter((x) => !(x.flags & ts.TypeFlags.Null));
      const kinds = new Set(parts.map((x) => (x.flags & ts.TypeFlags.StringLiteral ? 'string' : checker.typeToString(x))));
      return { name: p.name, type: [...kinds].sort().join(' | ') || 'null' };
    }),
  );
}

// What postgres.js hands back for each SQL type.
const JS_TYPE: Record<string, string> = {
  bigint: 'bigint',
  integer: 'number',
  smallint: 'number',
  text: 'string',
  uuid: 'string',
  numeric: 'string',
  jsonb: 'unknown',
  'timestamp with time zone': 'Date',
};

describe('orchestrator/queue.ts result types', () => {
  const program = ts.createProgram([path.join(root, 'orchestrator/queue.ts')], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
  });
  const cases: [string, string][] = [
    ['ClaimedJob', 'apportion.claim_jobs(text, text[], integer, integer)'],
    ['ClaimedOrRun', 'apportion.claim_and_run_jobs(text, text[], integer, integer, integer)'],
    ['JobOutcome', 'apportion.run_tenant_jobs(text, uuid, bigint[])'],
    ['JobStatus', 'apportion.job_status(bigint)'],
    ['QueueDepth', 'apportion.queue_overview()'],
    ['OpenFailure', 'apportion.open_failures(uuid, integer)'],
    ['PendingAllocations', 'apportion.pending_allocations_overview()'],
  ];
  it.each(cases)('%s has exactly the columns of %s, typed as postgres.js returns them', async (name, fn) => {
    const columns = await resultColumns(fn);
    expect(columns.length).toBeGreaterThan(0);
    const want = columns.map((c) => ({ name: c.name, type: JS_TYPE[c.type] ?? `unmapped SQL type ${c.type}` })).sort((a, b) => a.name.localeCompare(b.name));
    for (const variant of typeScriptFields(program, name)) {
      const have = variant.map((f) => ({ name: f.name, type: f.type === 'null' ? (want.find((w) => w.name === f.name)?.type ?? 'null') : f.type }));
      expect(have.sort((a, b) => a.name.localeCompare(b.name))).toEqual(want);
    }
  });
});

/** Every function README's SQL API tables name, with the roles its "who" column gives. */
function readmeFunctions(): Map<string, Set<string>> {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const api = readme.slice(readme.indexOf('## SQL API'), readme.indexOf('\n## ', readme.indexOf('## SQL API') + 1));
  const found = new Map<string, Set<string>>();
  for (const line of api.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !cells[1]!.includes('apportion.')) continue;
    const who = new Set((cells[2] ?? '').split(/[,\s]+/).filter((w) => ['ingest', 'worker', 'reader', 'allocator'].includes(w)).map((w) => `apportion_${w}`));
    for (const m of cells[1]!.matchAll(/apportion\.([a-z_]+)\(/g)) found.set(m[1]!, who);
  }
  return found;
}

describe('currencies', () => {
  it('the ISO 4217 migration is exactly what the list currency-codes ships gives (npm run currencies)', async () => {
    expect(fs.readFileSync(CURRENCY_MIGRATION, 'utf8')).toBe(migrationText());
    const { currencies, withoutMinorUnits } = isoCurrencies();
    const rows = await sql<{ code: string; minor_units: number }[]>`select code, minor_units from apportion.iso_currencies() order by code`;
    expect(rows.map((r) => `${r.code} ${r.minor_units}`)).toEqual(currencies.map((c) => `${c.code} ${c.minorUnits}`));
    expect(withoutMinorUnits).toContain('XAU');
    const [none] = await sql<{ n: number }[]>`select count(*)::int as n from unnest(${withoutMinorUnits}::text[]) c where apportion.currency_minor_units(c) is not null`;
    expect(none!.n).toBe(0);
  });
});

describe('README', () => {
  it('documents every function of schema apportion, and nothing else, with who may call it', async () => {
    const documented = readmeFunctions();
    const rows = await sql<{ name: string; roles: string[] }[]>`
      select p.proname as name,
             array(select r from unnest(array['apportion_allocator', 'apportion_ingest', 'apportion_worker', 'apportion_reader']) r
                    where has_function_privilege(r, p.oid, 'execute') order by r) as roles
        from pg_proc p where p.pronamespace = 'apportion'::regnamespace order by 1`;
    expect([...documented.keys()].sort()).toEqual(rows.map((r) => r.name));
    for (const r of rows) expect({ fn: r.name, roles: [...documented.get(r.name)!].sort() }).toEqual({ fn: r.name, roles: r.roles });
  });
});

function runWorker(url: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'orchestrator/cli.ts'), 'worker'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: url, APPORTION_HEALTH_PORT: '-1', LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('runtime role', () => {
  it('the worker refuses to start as a role that bypasses row-level security', async () => {
    // db.url is the test cluster's superuser; the others are logins made so
    // for the case and put back afterwards.
    const cases = [
      { role: 'the superuser', url: async () => db.url, says: /connected as role \w+, which is a superuser: row-level security does not hold for it/, undo: async () => {} },
      {
        // The owner's policy sees every tenant.
        role: 'a member of apportion_owner',
        url: async () => {
          const url = await loginRoleUrl(db.url, null, 'owner_member_test_login', 'test-only-owner-member');
          await sql`grant apportion_owner to owner_member_test_login`;
          return url;
        },
        says: /connected as role owner_member_test_login, which is a member of apportion_owner/,
        undo: async () => void (await sql`revoke apportion_owner from owner_member_test_login`),
      },
      {
        role: 'a BYPASSRLS login in apportion_worker',
        url: async () => {
          const url = await loginRoleUrl(db.url, 'apportion_worker', 'bypassrls_test_login', 'test-only-bypassrls');
          await sql`alter role bypassrls_test_login bypassrls`;
          return url;
        },
        says: /connected as role bypassrls_test_login, which is BYPASSRLS/,
        undo: async () => void (await sql`alter role bypassrls_test_login nobypassrls`),
      },
    ];
    for (const c of cases) {
      try {
        const run = await runWorker(await c.url());
        expect({ role: c.role, code: run.code }).toEqual({ role: c.role, code: 78 });
        expect(run.stderr).toMatch(c.says);
        expect(run.stderr).toContain('APPORTION_ALLOW_PRIVILEGED_ROLE=true');
      } finally {
        await c.undo();
      }
    }
  });

  it('starts as such a role only when told this is development, and says so', async () => {
    const cfg = loadConfig({ DATABASE_URL: db.url, APPORTION_HEALTH_PORT: '-1', APPORTION_ALLOW_PRIVILEGED_ROLE: 'true', APPORTION_WORKER_ID: 'privileged-dev' });
    const lines: string[] = [];
    const log = createLogger('warn', { write: (l: string) => void lines.push(l) });
    const w = new Worker(cfg, log);
    await w.start();
    await w.stop('test');
    expect(lines.join('')).toContain('started anyway: APPORTION_ALLOW_PRIVILEGED_ROLE=true, for development only');
  });
});

describe('schema version', () => {
  it('the database reports the version this orchestrator knows', async () => {
    const [row] = await sql<{ v: number }[]>`select apportion.schema_version() as v`;
    expect(row!.v).toBe(SCHEMA_VERSION);
  });

  it('the worker refuses a newer schema, and an older one, saying what to run', async () => {
    const workerUrl = await db.urlAs('apportion_worker');
    await sql.begin(async (tx) => {
      await tx`set local role apportion_owner`;
      await tx.unsafe(`create or replace function apportion.schema_version() returns integer language sql immutable as 'select ${SCHEMA_VERSION + 1}'`);
    });
    const newer = await runWorker(workerUrl);
    expect(newer.code).toBe(78);
    expect(newer.stderr).toContain(`the database has apportion schema ${SCHEMA_VERSION + 1}, newer than schema ${SCHEMA_VERSION}`);

    await sql`drop function apportion.schema_version()`;
    const older = await runWorker(workerUrl);
    expect(older.code).toBe(78);
    expect(older.stderr).toContain('run `apportion migrate`');

    await sql`delete from apportion.db_sources`;
    await migrate(db.url);
    const [row] = await sql<{ v: number }[]>`select apportion.schema_version() as v`;
    expect(row!.v).toBe(SCHEMA_VERSION);
  });
});

describe('migrate', () => {
  it('drops what db/ no longer defines and says which; refuses when something depends on it', async () => {
    await sql.begin(async (tx) => {
      await tx`set local role apportion_owner`;
      await tx`create function apportion.leftover_probe() returns integer language sql as 'select 1'`;
      await tx`create function apportion_internal.leftover_dependency() returns integer language sql as 'select 2'`;
    });
    await sql`create view public.leftover_dependent as select apportion_internal.leftover_dependency() as x`;
    await sql`delete from apportion.db_sources`;
    await expect(migrate(db.url)).rejects.toThrow(
      /function apportion_internal\.leftover_dependency\(\) is no longer defined in db\/ but cannot be dropped: .*depend/,
    );
    const [kept] = await sql<{ n: number }[]>`select count(*)::int as n from pg_proc where proname in ('leftover_probe', 'leftover_dependency')`;
    expect(kept!.n).toBe(2); // the refused migration changed nothing

    await sql`drop view public.leftover_dependent`;
    const log: string[] = [];
    await migrate(db.url, (m) => log.push(m));
    expect(log).toContain('dropped function apportion.leftover_probe(): no longer defined in db/');
    expect(log).toContain('dropped function apportion_internal.leftover_dependency(): no longer defined in db/');
    const [gone] = await sql<{ n: number }[]>`select count(*)::int as n from pg_proc where proname in ('leftover_probe', 'leftover_dependency')`;
    expect(gone!.n).toBe(0);
    const again: string[] = [];
    await migrate(db.url, (m) => again.push(m));
    expect(again).toEqual([]); // nothing changed, nothing applied
  });

  it('a runtime login holding the migration lock stalls migrate only until its timeout, and is named', async () => {
    // Any login can take an advisory lock: here the ingest role takes
    // migrate's, as an attacker (or a stuck script) would.
    const ingest = postgres(await db.urlAs('apportion_ingest'), { max: 1, onnotice: () => {}, connection: { application_name: 'lock-squatter' } });
    try {
      await ingest`select pg_advisory_lock(7310040112105110)`;
      const waiting: string[] = [];
      const t0 = Date.now();
      const err = await migrate(db.url, (m) => waiting.push(m), { lockTimeoutMs: 1500 }).then(() => null, (e: Error) => e);
      const waited = Date.now() - t0;
      expect(err?.message).toMatch(/the migration lock .* is held by pid \d+ \(role apportion_ingest_test_login, application "lock-squatter"/);
      expect(err?.message).toContain('gave up after 1.5 s');
      expect(waited).toBeGreaterThanOrEqual(1500);
      expect(waited).toBeLessThan(15_000);
      expect(waiting.join('\n')).toMatch(/waiting for the migration lock, held by pid \d+ \(role apportion_ingest_test_login/);
      await ingest`select pg_advisory_unlock(7310040112105110)`;
      await migrate(db.url, () => {}, { lockTimeoutMs: 1500 }); // free again: migrates
    } finally {
      await ingest.end();
    }
  });
});
