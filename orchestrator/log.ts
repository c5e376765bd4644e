// JSON logs. Every line about a job carries job_id, queue, task, tenant_id
// and correlation_id (see jobFields).
import { pino } from 'pino';

export type Logger = pino.Logger;

export function createLogger(level: string, destination: pino.DestinationStream | number = 1): Logger {
  return pino(
    { level, base: { service: 'apportion' }, timestamp: pino.stdTimeFunctions.isoTime },
    typeof destination === 'number' ? pino.destination({ dest: destination, sync: false }) : destination,
  );
}

export interface JobRef {
  job_id: bigint | number | string;
  queue: string;
  task: string;
  tenant_id: string | null;
  correlation_id: string | null;
}

export function jobFields(j: JobRef): Record<string, unknown> {
  return {
    job_id: String(j.job_id),
    queue: j.queue,
    task: j.task,
    tenant_id: j.tenant_id,
    correlation_id: j.correlation_id,
  };
}
