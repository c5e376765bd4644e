// The orchestrator runs tenants' jobs under row-level security, which does
// not hold for a superuser, a BYPASSRLS role or apportion_owner (its policy
// sees every tenant). Started as one of those, one tenant's job could read
// or write another's: the worker refuses, unless told this is development.
import type { Sql } from './db.js';

export class PrivilegedRoleError extends Error {}

/** The connected role, and why it is too privileged to run jobs (empty when it is not). */
export async function privilegedRoleReasons(sql: Sql): Promise<{ role: string; reasons: string[] }> {
  const [r] = await sql<{ role: string; superuser: boolean; bypassrls: boolean; owner: boolean }[]>`
    select r.rolname as role, r.rolsuper as superuser, r.rolbypassrls as bypassrls,
           exists (select from pg_roles o where o.rolname = 'apportion_owner') and pg_has_role(current_user, 'apportion_owner', 'member') as owner
      from pg_roles r where r.rolname = current_user`;
  // (A superuser is everything else too: that is reason enough.)
  if (r!.superuser) return { role: r!.role, reasons: ['a superuser'] };
  const reasons: string[] = [];
  if (r!.bypassrls) reasons.push('BYPASSRLS');
  if (r!.owner) reasons.push('a member of apportion_owner');
  return { role: r!.role, reasons };
}

/**
 * Throws PrivilegedRoleError when the role bypasses row-level security and
 * allow is false; returns the warning to log when allow is true.
 */
export async function checkRuntimeRole(sql: Sql, allow: boolean): Promise<string | null> {
  const { role, reasons } = await privilegedRoleReasons(sql);
  if (reasons.length === 0) return null;
  const what = `the orchestrator is connected as role ${role}, which is ${reasons.join(' and ')}: row-level security does not hold for it, so one tenant's job could read or write another tenant's data`;
  if (allow) return `${what} (started anyway: APPORTION_ALLOW_PRIVILEGED_ROLE=true, for development only)`;
  throw new PrivilegedRoleError(
    `${what}. Connect as a login role in apportion_worker (README, "Roles"); for development only, APPORTION_ALLOW_PRIVILEGED_ROLE=true starts it anyway`,
  );
}
