#!/usr/bin/env -S npx tsx
// DATABASE_URL=... npm run migrate — install or upgrade apportion in that database.
import { migrate, migrateOptionsFromEnv } from '../orchestrator/migrate.js';

const url = process.env.DATABASE_URL;
if (!url) {
  console.error('DATABASE_URL is not set. Example: DATABASE_URL=postgres://user:pass@host:5432/app npm run migrate');
  process.exit(2);
}
try {
  const result = await migrate(url, (m) => console.log(m), migrateOptionsFromEnv());
  if (result.migrations.length === 0 && result.sources.length === 0) console.log('apportion is up to date; nothing to do');
} catch (err) {
  console.error(`migrate failed: ${(err as Error).message}`);
  process.exit(1);
}
