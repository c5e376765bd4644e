#!/usr/bin/env -S npx tsx
// npm run sql-api: install apportion into a throwaway database and write
// docs/sql-api.md, the reference of every table, view and function in
// schema apportion, from the catalog: signatures, columns, who may use what
// (the grants), and the COMMENT ON text db/ defines. The vitest suite
// renders it again from its database and compares.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { migrate } from '../orchestrator/migrate.js';
import { recreateDatabase, startCluster } from './lib/cluster.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SQL_API_DOC = path.join(root, 'docs', 'sql-api.md');

const RUNTIME_ROLES = ['apportion_ingest', 'apportion_worker', 'apportion_reader', 'apportion_allocator'];
const TABLE_PRIVILEGES = ['select', 'insert', 'update', 'delete'] as const;
// pg_class.relkind: tables (plain, partitioned, foreign) and views (plain, materialized).
const TABLE_KINDS = ['r', 'p', 'f'];
const VIEW_KINDS = ['v', 'm'];
const RELATION_KINDS = [...TABLE_KINDS, ...VIEW_KINDS];

interface Relation {
  name: string;
  kind: string;
  comment: string | null;
  rls: boolean;
  force_rls: boolean;
  security_invoker: boolean;
  partition_key: string | null;
  partition_of: string | null;
  partition_bound: string | null;
}

interface Column {
  relation: string;
  name: string;
  type: string;
  not_null: boolean;
  comment: string | null;
}

interface Privilege {
  relation: string;
  role: string;
  privilege: (typeof TABLE_PRIVILEGES)[number];
  whole_table: boolean;
  columns: string[];
}

interface FunctionRow {
  name: string;
  /** As COMMENT ON names it: apportion.name(argument types). */
  signature: string;
  kind: string;
  arguments: string;
  result: string | null;
  security_definer: boolean;
  roles: string[];
  comment: string | null;
}

/** Text for a markdown table cell: one line, pipes escaped. */
function cell(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

function roleList(roles: string[]): string {
  return roles.length === 0 ? 'none (owner only)' : roles.map((r) => `\`${r}\``).join(', ');
}

function renderRelation(r: Relation, columns: Column[], privileges: Privilege[]): string {
  const out = [`### apportion.${r.name}`, '', r.comment ?? '', ''];
  if (r.partition_key) out.push(`Partitioned by ${r.partition_key}.`, '');
  if (r.partition_of) out.push(`Partition of \`${r.partition_of}\`, ${r.partition_bound}.`, '');
  if (VIEW_KINDS.includes(r.kind)) {
    out.push(r.security_invoker ? 'Security invoker: it reads as the caller, under the caller\'s row level security.' : 'Reads with its owner\'s rights.', '');
  } else {
    out.push(`Row level security: ${r.rls ? (r.force_rls ? 'enabled and forced' : 'enabled') : 'off'}.`, '');
  }
  const granted = RUNTIME_ROLES.map((role) => {
    const mine = privileges.filter((p) => p.role === role);
    const parts = TABLE_PRIVILEGES.flatMap((priv) => {
      const p = mine.find((x) => x.privilege === priv);
      if (!p) return [];
      return [p.whole_table ? priv : `${priv} (${p.columns.join(', ')})`];
    });
    return parts.length === 0 ? [] : [`| \`${role}\` | ${parts.join(', ')} |`];
  }).flat();
  if (granted.length === 0) {
    out.push('Privileges: none for the runtime roles (owner only).', '');
  } else {
    out.push('| role | privileges |', '|---|---|', ...granted, '');
  }
  out.push('| column | type | null | comment |', '|---|---|---|---|');
  for (const c of columns) {
    out.push(`| \`${c.name}\` | ${cell(c.type)} | ${c.not_null ? 'not null' : 'null'} | ${cell(c.comment ?? '')} |`);
  }
  out.push('');
  return out.join('\n');
}

function renderFunction(f: FunctionRow): string {
  const signature = `apportion.${f.name}(${f.arguments})${f.result === null ? '' : ` returns ${f.result}`}`;
  return [
    `### apportion.${f.name}`,
    '',
    '```sql',
    signature,
    '```',
    '',
    `${f.kind === 'p' ? 'Procedure, security' : 'Security'} ${f.security_definer ? 'definer' : 'invoker'}. Execute: ${roleList(f.roles)}.`,
    '',
    f.comment ?? '',
    '',
  ].join('\n');
}

/**
 * docs/sql-api.md as the database at `url` defines it. Throws, naming them,
 * when tables, views or functions of schema apportion have no comment.
 */
export async function renderSqlApi(url: string): Promise<string> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const relations = await sql<Relation[]>`
      select c.relname::text as name, c.relkind::text as kind,
             obj_description(c.oid, 'pg_class') as comment,
             c.relrowsecurity as rls, c.relforcerowsecurity as force_rls,
             coalesce((select o.option_value from pg_options_to_table(c.reloptions) o
                        where o.option_name = 'security_invoker'), 'false')::boolean as security_invoker,
             case when c.relkind = 'p' then pg_get_partkeydef(c.oid) end as partition_key,
             (select i.inhparent::regclass::text from pg_inherits i where i.inhrelid = c.oid and c.relispartition) as partition_of,
             case when c.relispartition then pg_get_expr(c.relpartbound, c.oid) end as partition_bound
        from pg_class c
       where c.relnamespace = 'apportion'::regnamespace and c.relkind::text = any (${RELATION_KINDS}::text[])
       order by c.relname collate "C"`;
    const columns = await sql<Column[]>`
      select c.relname::text as relation, a.attname::text as name, format_type(a.atttypid, a.atttypmod) as type,
             a.attnotnull as not_null, col_description(a.attrelid, a.attnum) as comment
        from pg_attribute a join pg_class c on c.oid = a.attrelid
       where c.relnamespace = 'apportion'::regnamespace and c.relkind::text = any (${RELATION_KINDS}::text[])
         and a.attnum > 0 and not a.attisdropped
       order by c.relname collate "C", a.attnum`;
    // Privileges granted on the whole table, or on some of its columns
    // (apportion.jobs: enqueue may set only some columns).
    const privileges = await sql<Privilege[]>`
      select c.relname::text as relation, r.role, p.privilege,
             has_table_privilege(r.role, c.oid, p.privilege) as whole_table,
             case when p.privilege = 'delete' then '{}'::text[]
                  else array(select a.attname::text from pg_attribute a
                              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
                                and has_column_privilege(r.role, c.oid, a.attnum, p.privilege)
                              order by a.attnum) end as columns
        from pg_class c
       cross join unnest(${RUNTIME_ROLES}::text[]) with ordinality as r (role, i)
       cross join unnest(${[...TABLE_PRIVILEGES]}::text[]) as p (privilege)
       where c.relnamespace = 'apportion'::regnamespace and c.relkind::text = any (${RELATION_KINDS}::text[])
         and case when p.privilege = 'delete' then has_table_privilege(r.role, c.oid, p.privilege)
                  else has_any_column_privilege(r.role, c.oid, p.privilege) end
       order by c.relname collate "C", r.i`;
    const functions = await sql<FunctionRow[]>`
      select p.proname::text as name, p.oid::regprocedure::text as signature, p.prokind::text as kind,
             pg_get_function_arguments(p.oid) as arguments, pg_get_function_result(p.oid) as result,
             p.prosecdef as security_definer,
             array(select r.role from unnest(${RUNTIME_ROLES}::text[]) with ordinality as r (role, i)
                    where has_function_privilege(r.role, p.oid, 'execute') order by r.i) as roles,
             obj_description(p.oid, 'pg_proc') as comment
        from pg_proc p
       where p.pronamespace = 'apportion'::regnamespace
       order by p.proname collate "C", pg_get_function_identity_arguments(p.oid) collate "C"`;

    const blank = (s: string | null) => s === null || s.trim() === '';
    const missing = [
      ...relations.filter((r) => blank(r.comment)).map((r) => `${VIEW_KINDS.includes(r.kind) ? 'view' : 'table'} apportion.${r.name}`),
      ...functions.filter((f) => blank(f.comment)).map((f) => `${f.kind === 'p' ? 'procedure' : 'function'} ${f.signature}`),
    ];
    if (missing.length > 0) {
      throw new Error(`objects in schema apportion without a comment (add COMMENT ON to db/): ${missing.join(', ')}`);
    }

    const section = (title: string, kinds: string[]) => [
      `## ${title}`,
      '',
      ...relations
        .filter((r) => kinds.includes(r.kind))
        .map((r) => renderRelation(r, columns.filter((c) => c.relation === r.name), privileges.filter((p) => p.relation === r.name))),
    ];
    return [
      '# SQL API reference',
      '',
      'Generated by `npm run sql-api` from the catalog of a fresh install and its',
      'COMMENT ON text (defined in db/): do not edit by hand; change the comments',
      'and run it again. Every table, view and function of schema `apportion`,',
      'with what the runtime roles (`apportion_ingest`, `apportion_worker`,',
      '`apportion_reader`, `apportion_allocator`) may do with it, as the database',
      'grants it. How they fit together: README.md, "SQL API".',
      '',
      ...section('Tables', TABLE_KINDS),
      ...section('Views', VIEW_KINDS),
      '## Functions',
      '',
      ...functions.map(renderFunction),
    ].join('\n').replace(/\n{3,}/g, '\n\n').trim() + '\n';
  } finally {
    await sql.end();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const server = await startCluster({ fast: true });
  try {
    const url = await recreateDatabase(server.adminUrl, 'apportion_sql_api');
    await migrate(url);
    fs.writeFileSync(SQL_API_DOC, await renderSqlApi(url));
    console.log(`wrote ${path.relative(root, SQL_API_DOC)}`);
  } finally {
    await server.stop();
  }
}
