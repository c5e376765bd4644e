// The SQL contract this orchestrator was written against. The database
// reports its own (apportion.schema_version(), CHANGELOG.md "Schema
// versions"); the worker refuses to start on any other.
import type { Sql } from './db.js';

export const SCHEMA_VERSION = 2;

export class SchemaVersionError extends Error {
  constructor(
    message: string,
    readonly found: number | null,
  ) {
    super(message);
  }
}

/** The database's schema version; null when apportion predates versioning or is not installed. */
export async function databaseSchemaVersion(sql: Sql): Promise<number | null> {
  try {
    const [row] = await sql<{ v: number }[]>`select apportion.schema_version() as v`;
    return row!.v;
  } catch (err) {
    // 42883: no such function (installed before 0.2.0); 3F000: no schema apportion.
    const code = (err as { code?: string }).code;
    if (code === '42883' || code === '3F000') return null;
    throw err;
  }
}

export async function checkSchemaVersion(sql: Sql): Promise<void> {
  const found = await databaseSchemaVersion(sql);
  if (found === SCHEMA_VERSION) return;
  if (found === null || found < SCHEMA_VERSION) {
    throw new SchemaVersionError(
      `the database has apportion schema ${found ?? 'from before 0.2.0 (or none)'}, this orchestrator needs schema ${SCHEMA_VERSION}: ` +
        'run `apportion migrate` (npm run migrate) with this version of apportion against DATABASE_URL, then start the worker again',
      found,
    );
  }
  throw new SchemaVersionError(
    `the database has apportion schema ${found}, newer than schema ${SCHEMA_VERSION} that this orchestrator knows: ` +
      `upgrade the orchestrator to the apportion release that installed schema ${found} (CHANGELOG.md, "Schema versions")`,
    found,
  );
}
