#!/usr/bin/env -S npx tsx
// npm run schema: install apportion into a throwaway database and write its
// normalised schema to test/schema.sql (npm test compares the two).
import fs from 'node:fs';
import { migrate } from '../orchestrator/migrate.js';
import { recreateDatabase, startCluster } from './lib/cluster.js';
import { dumpSchema, SNAPSHOT } from './lib/schema.js';

const server = await startCluster({ fast: true });
try {
  const url = await recreateDatabase(server.adminUrl, 'apportion_schema');
  await migrate(url);
  fs.writeFileSync(SNAPSHOT, dumpSchema(url));
  console.log(`wrote ${SNAPSHOT}`);
} finally {
  await server.stop();
}
