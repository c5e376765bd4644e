// The dedicated LISTEN connection: wakes the claimer when jobs are enqueued.
// It is never a work connection, so it never goes through a transaction
// pooler. postgres.js re-listens after a reconnect and calls onlisten again:
// that is where the catch-up wake goes. A heartbeat through the channel
// detects a listener that did not come back; the claimer's slow poll is the
// backstop.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { Config } from './config.js';
import { NO_TYPE_FETCH, type Sql } from './db.js';
import type { Logger } from './log.js';

export const NOTIFY_CHANNEL = 'apportion_jobs';
const HEARTBEAT_PREFIX = 'heartbeat:';

export class Listener {
  /** Called on every job notification and on every (re)connect. */
  onWake: () => void = () => {};
  private sql!: Sql;
  private listenSql?: postgres.Sql;
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatStopped = false;
  private isConnected = false;
  private lastHeartbeatSent = 0;
  private lastHeartbeatSeen = 0;
  private readonly heartbeatIntervalMs: number;
  /** Payloads that wake the claimer: the names of the queues we work. */
  private readonly wakingPayloads: Set<string>;
  /** Our heartbeat's payload: random, so it tells other listeners nothing about us. */
  private readonly heartbeatPayload = HEARTBEAT_PREFIX + randomBytes(8).toString('hex');

  constructor(
    private readonly cfg: Pick<Config, 'listenUrl' | 'workerId' | 'pollIntervalMs' | 'queues'>,
    private readonly log: Logger,
  ) {
    this.heartbeatIntervalMs = Math.max(250, cfg.pollIntervalMs);
    this.wakingPayloads = new Set(cfg.queues);
  }

  /** Whether the LISTEN connection is up, as far as the heartbeat knows. */
  get connected(): boolean {
    return this.isConnected;
  }

  /** Listen, and heartbeat through `sql` (the work pool) from now on. */
  async start(sql: Sql): Promise<void> {
    this.sql = sql;
    await this.listen();
    this.heartbeatTimer = setInterval(() => void this.checkHeartbeat(), this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  /** No more heartbeats or reconnects; notifications still arrive until stop(). */
  stopHeartbeat(): void {
    this.heartbeatStopped = true;
    clearInterval(this.heartbeatTimer);
  }

  async stop(): Promise<void> {
    this.stopHeartbeat();
    await this.listenSql?.end({ timeout: 1 }).catch(() => {});
  }

  private async listen(): Promise<void> {
    this.listenSql = postgres(this.cfg.listenUrl, {
      max: 1,
      onnotice: () => {},
      fetch_types: NO_TYPE_FETCH, // (see db.ts)
      connection: { application_name: `apportion-listener ${this.cfg.workerId}` },
    });
    await this.listenSql.listen(
      NOTIFY_CHANNEL,
      (payload) => {
        // Any login may NOTIFY this channel: a payload is only a hint. Any
        // notification proves the connection alive; only a queue we work
        // wakes the claimer (which coalesces floods of them, dispatcher.ts).
        this.lastHeartbeatSeen = Date.now();
        if (this.wakingPayloads.has(payload)) this.onWake();
      },
      () => {
        this.isConnected = true;
        this.lastHeartbeatSeen = Date.now();
        this.log.info({ worker_id: this.cfg.workerId }, 'listener connected; catching up');
        this.onWake();
      },
    );
  }

  // Any notification counts as the heartbeat seen. One not seen within two
  // intervals means the listener is gone: replace its connection.
  private async checkHeartbeat(): Promise<void> {
    if (this.heartbeatStopped) return;
    const now = Date.now();
    if (this.lastHeartbeatSent > 0 && this.lastHeartbeatSeen < this.lastHeartbeatSent && now - this.lastHeartbeatSent > 2 * this.heartbeatIntervalMs) {
      if (this.isConnected) this.log.warn({ worker_id: this.cfg.workerId }, 'listener silent; reconnecting it');
      this.isConnected = false;
      const old = this.listenSql;
      this.listenSql = undefined;
      await old?.end({ timeout: 1 }).catch(() => {});
      await this.listen().catch((err) => this.log.error({ err: String(err) }, 'listener reconnect failed'));
      this.lastHeartbeatSent = 0;
      return;
    }
    if (this.lastHeartbeatSent === 0 || this.lastHeartbeatSeen >= this.lastHeartbeatSent) {
      this.lastHeartbeatSent = now;
      await this.sql`select pg_notify(${NOTIFY_CHANNEL}, ${this.heartbeatPayload})`.catch(() => {});
    }
  }
}
