// Databases for vitest files. Under `npm test` without DATABASE_URL every
// file gets a fresh database cloned from the migrated template; with
// DATABASE_URL the files share that database and run one after another.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { loginRoleUrl, type GroupRole } from '../../scripts/lib/roles.js';

const adminUrl = process.env.APPORTION_TEST_ADMIN_URL;
const template = process.env.APPORTION_TEST_TEMPLATE;
const shared = process.env.APPORTION_TEST_DATABASE_URL;

export interface TestDatabase {
  url: string;
  /** The database as a login role that is a member of `group` only. */
  urlAs(group: GroupRole): Promise<string>;
  drop(): Promise<void>;
}

function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = '/' + db;
  return u.toString();
}

export async function testDatabase(label: string): Promise<TestDatabase> {
  if (!adminUrl && !shared) {
    throw new Error('vitest needs a database: run the suite with `npm test` (it starts one), or set APPORTION_TEST_DATABASE_URL');
  }
  let url: string;
  let drop: () => Promise<void>;
  if (adminUrl && template) {
    const name = `t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(3).toString('hex')}`;
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await admin`create database ${admin(name)} template ${admin(template)}`;
    await admin.end();
    url = withDb(adminUrl, name);
    drop = async () => {
      const a = postgres(adminUrl, { max: 1, onnotice: () => {} });
      await a`drop database if exists ${a(name)} with (force)`;
      await a.end();
    };
  } else {
    url = shared!;
    drop = async () => {};
  }
  return {
    url,
    drop,
    urlAs(group) {
      return loginRoleUrl(url, group, `${group}_test_login`, `test-only-${group}`);
    },
  };
}
