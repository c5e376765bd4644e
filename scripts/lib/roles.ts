// Login roles for scripts and tests: a login role that is a member of one
// apportion group role, never superuser, so row level security applies for
// real. Returns `url` rewritten to connect as that role.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';

export type GroupRole = 'apportion_ingest' | 'apportion_worker' | 'apportion_reader' | 'apportion_allocator';

// Pass a fixed password when several processes share the role (the test
// files do): rotating it would break the others' new connections.
// group null: a plain login role in no apportion group (the peer queues'
// role in bench:peers).
export async function loginRoleUrl(url: string, group: GroupRole | null, login: string,
  password = randomBytes(12).toString('hex')): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(login)) throw new Error(`bad role name ${login}`);
  if (!/^[A-Za-z0-9_-]+$/.test(password)) throw new Error('password must be [A-Za-z0-9_-]');
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    // Roles belong to the whole cluster, and test files running side by side
    // set up the same shared logins: two at once can collide on the same
    // catalog row (42710 role exists, 23505, or XX000 "tuple concurrently
    // updated"). Every statement here is idempotent, so try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await sql.unsafe(`do $$ begin
          if not exists (select from pg_roles where rolname = '${login}') then
            create role ${login} login nosuperuser nobypassrls;
          end if;
        end $$`);
        await sql.unsafe(`alter role ${login} password '${password}'`);
        if (group) await sql.unsafe(`grant ${group} to ${login}`);
        break;
      } catch (err) {
        const e = err as { code?: string; message?: string };
        const collided = e.code === '42710' || e.code === '23505' || (e.code === 'XX000' && /concurrently/.test(e.message ?? ''));
        if (!collided || attempt >= 10) throw err;
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 80));
      }
    }
  } finally {
    await sql.end();
  }
  const u = new URL(url);
  u.username = login;
  u.password = password;
  return u.toString();
}
