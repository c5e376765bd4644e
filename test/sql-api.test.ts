// docs/sql-api.md is what the database defines: rendered again from this
// database's catalog and comments, it must equal the committed file; and an
// object of schema apportion without a comment fails the rendering, naming it.
import fs from 'node:fs';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderSqlApi, SQL_API_DOC } from '../scripts/sql-api.js';
import { testDatabase, type TestDatabase } from './helpers/db.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await testDatabase('sql_api');
});

afterAll(async () => {
  await db?.drop();
});

describe('docs/sql-api.md', () => {
  it('matches the catalog and comments of a fresh install', async () => {
    const rendered = await renderSqlApi(db.url);
    const committed = fs.existsSync(SQL_API_DOC) ? fs.readFileSync(SQL_API_DOC, 'utf8') : '';
    expect(rendered, 'docs/sql-api.md differs from the database: run `npm run sql-api` and commit docs/sql-api.md').toBe(committed);
  });

  it('is not rendered while a function of schema apportion has no comment, and says which', async () => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await sql`create function apportion.zz_uncommented() returns int language sql as 'select 1'`;
      await expect(renderSqlApi(db.url)).rejects.toThrow(/without a comment.*function apportion\.zz_uncommented\(\)/);
    } finally {
      await sql`drop function if exists apportion.zz_uncommented()`;
      await sql.end();
    }
  });
});
