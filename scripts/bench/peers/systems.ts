// The systems measured, built from the bench database's URLs; the same list
// serves the parent (main.ts) and the kill-test child.
import { apportionSystem } from './apportion.js';
import { graphileSystem } from './graphile.js';
import { pgbossSystem } from './pgboss.js';
import type { QueueSystem } from './system.js';

export interface BenchUrls {
  /** Superuser: setup and counting only (bypasses RLS). */
  admin: string;
  /** Login role in apportion_worker. */
  worker: string;
  /** Login role for the peers: owns their schemas, subject to RLS. */
  peer: string;
}

export const SYSTEM_KEYS = ['apportion', 'graphile-default', 'graphile-batched', 'pgboss', 'pgboss-tx'] as const;
export type SystemKey = (typeof SYSTEM_KEYS)[number];

export function makeSystem(key: SystemKey, urls: BenchUrls): QueueSystem {
  switch (key) {
    case 'apportion':
      return apportionSystem(urls.admin, urls.worker);
    case 'graphile-default':
      return graphileSystem(urls.admin, urls.peer, 'default');
    case 'graphile-batched':
      return graphileSystem(urls.admin, urls.peer, 'batched');
    case 'pgboss':
      return pgbossSystem(urls.admin, urls.peer, 'own-transaction');
    case 'pgboss-tx':
      return pgbossSystem(urls.admin, urls.peer, 'transactional');
  }
}
