-- run_jobs, as apportion_worker under a tenant: each claimed job's handler
-- runs in its own savepoint, as the worker, with the job's correlation id.
-- A success is marked succeeded with its result; a retryable error puts the
-- job back in the queue with exponential backoff until max_attempts, then it
-- fails for good into worker_failed_jobs; a non-retryable error fails at
-- once. A failing handler's writes roll back alone, the rest of the batch
-- commits; after a canceled handler (57014) the rest is given back unstarted. Jobs of another tenant, or claimed by another worker, are skipped
-- and untouched.
--
-- The handler under test: housekeeping.noop's function, apportion.task_noop,
-- is replaced inside this transaction (rolled back) and the task given 3
-- attempts. Tasks are dispatched to their handlers by name, so a task
-- registered only in a test would not be run; replacing an existing
-- handler's body is. The replacement records payload.marker in
-- qtest.handler_writes, then raises SQLSTATE payload.raise if there is one,
-- else returns the role, tenant and correlation id it ran with.
--
-- Tenant A = aaaaaaaa-0000-4000-8000-00000000000a
-- Tenant B = bbbbbbbb-0000-4000-8000-00000000000b
begin;
\ir lib/isolate.sql
select plan(46);

delete from apportion.worker_failed_jobs;
delete from apportion.jobs;

create schema qtest;
create table qtest.handler_writes (marker text not null);
grant usage on schema qtest to apportion_worker;
grant select, insert on qtest.handler_writes to apportion_worker;
create or replace function apportion.task_noop(p_payload jsonb)
returns jsonb
language plpgsql
as $$
begin
  insert into qtest.handler_writes (marker) values (p_payload ->> 'marker');
  if p_payload ? 'raise' then
    raise exception 'qtest: %', p_payload ->> 'raise' using errcode = p_payload ->> 'raise';
  end if;
  return jsonb_build_object('marker', p_payload ->> 'marker', 'role', current_user,
                            'tenant_id', current_setting('app.tenant_id', true),
                            'correlation_id', current_setting('app.correlation_id', true));
end
$$;
update apportion.queue_tasks set max_attempts = 3 where queue = 'housekeeping' and task = 'noop';

-- Who may run jobs.
set local role apportion_ingest;
select throws_ok($$select * from apportion.run_jobs('w1', array[1::bigint])$$,
  '42501', 'permission denied for function run_jobs', 'ingest cannot execute run_jobs (42501)');
reset role;

-- Success: a real handler (housekeeping.ping) ----------------------------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'ping', '{}', 'cccccccc-0000-4000-8000-00000000000c') as ping \gset
reset role;
set local role apportion_worker;
select job_id as ping_claimed from apportion.claim_jobs('w1', array['housekeeping']) \gset
select results_eq(format($$select job_id, attempt, outcome, error_code
                             from apportion.run_jobs('w1', array[%s::bigint])$$, :ping),
  format($$values (%s::bigint, 1, 'succeeded', null::text)$$, :ping),
  'run_jobs reports the ping job succeeded on attempt 1');
reset role;
select results_eq(format($$select state, attempts, result ->> 'status', result ->> 'role', locked_by, locked_until,
                                  error_code, finished_at is not null
                             from apportion.jobs where id = %s$$, :ping),
  $$values ('succeeded', 1, 'ok', 'apportion_worker', null::text, null::timestamptz, null::text, true)$$,
  'the job is succeeded, its result stored (the handler ran as apportion_worker), lease cleared');
select results_eq(format($$select jsonb_array_length(attempt_log), attempt_log -> 0 ->> 'attempt', attempt_log -> 0 ->> 'worker',
                                  attempt_log -> 0 ->> 'outcome'
                             from apportion.jobs where id = %s$$, :ping),
  $$values (1, '1', 'w1', 'succeeded')$$, 'one attempt_log entry: attempt 1 by w1, succeeded');

-- One batch, one savepoint per job -----------------------------------------------
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'noop', '{"marker": "ok1"}', 'dddddddd-0000-4000-8000-00000000000d') as ok1 \gset
select apportion.enqueue('housekeeping', 'noop', '{"marker": "bad", "raise": "22023"}', 'eeeeeeee-0000-4000-8000-00000000000e') as bad \gset
select apportion.enqueue('housekeeping', 'noop', '{"marker": "ok2"}') as ok2 \gset
reset role;
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'noop', '{"marker": "okB"}') as ok_b \gset
reset role;
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w1', array['housekeeping'], 10)), 4::bigint, 'the worker claims the four noop jobs of A and B');
reset role;

select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_worker;
select set_eq(format($$select job_id, outcome, error_code, error_message from apportion.run_jobs('w1', array[%s, %s, %s, %s]::bigint[])$$,
                     :ok1, :bad, :ok2, :ok_b),
  format($$values (%s::bigint, 'succeeded', null::text, null::text), (%s, 'failed', '22023', 'qtest: …'), (%s, 'succeeded', null, null)$$,
         :ok1, :bad, :ok2),
  'worker, tenant A, a batch of A''s three jobs and B''s one: A''s run (two succeed, the 22023 fails: its message without the payload''s value), B''s is not reported');
select is(current_setting('app.tenant_id'), 'aaaaaaaa-0000-4000-8000-00000000000a', 'run_jobs leaves the caller''s tenant set');
reset role;
select results_eq($$select marker from qtest.handler_writes order by marker$$, array['ok1', 'ok2'],
  'the failed job''s write was rolled back, the two successes'' writes kept');
select results_eq(format($$select id, state, attempts, result from apportion.jobs where id in (%s, %s, %s) order by id$$, :ok1, :bad, :ok2),
  format($$values (%s::bigint, 'succeeded', 1, '{"marker": "ok1", "role": "apportion_worker", "tenant_id": "aaaaaaaa-0000-4000-8000-00000000000a", "correlation_id": "dddddddd-0000-4000-8000-00000000000d"}'::jsonb),
                  (%s, 'failed', 1, null),
                  (%s, 'succeeded', 1, '{"marker": "ok2", "role": "apportion_worker", "tenant_id": "aaaaaaaa-0000-4000-8000-00000000000a", "correlation_id": ""}')$$,
         :ok1, :bad, :ok2),
  'the handlers ran as the worker under tenant A, each with its own job''s correlation id; the 22023 job failed after one attempt');
select results_eq(format($$select tenant_id, queue, task, payload, error_code, error_message, attempts, correlation_id, status
                             from apportion.worker_failed_jobs where job_id = %s$$, :bad),
  $$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, 'housekeeping', 'noop', '{"marker": "bad", "raise": "22023"}'::jsonb,
            '22023', 'qtest: 22023', 1, 'eeeeeeee-0000-4000-8000-00000000000e'::uuid, 'open')$$,
  'the non-retryable failure is recorded in worker_failed_jobs at once, open');
select results_eq(format($$select attempt_log -> 0 ->> 'outcome', attempt_log -> 0 ->> 'error_code' from apportion.jobs where id = %s$$, :bad),
  $$values ('failed', '22023')$$, 'its attempt_log entry says failed, 22023');
select is((select count(*) from apportion.worker_failed_jobs), 1::bigint, 'only the failed job is in worker_failed_jobs');

-- B's job was invisible to the run under A: untouched.
select results_eq(format($$select state, attempts, locked_by, attempt_log from apportion.jobs where id = %s$$, :ok_b),
  $$values ('running', 1, 'w1', '[]'::jsonb)$$, 'B''s job is still running, claimed by w1, with no attempt logged');
select is((select count(*) from qtest.handler_writes where marker = 'okB'), 0::bigint, 'B''s handler did not run');
-- Under B, by another worker id: still skipped. By w1: run.
select set_config('app.tenant_id', 'bbbbbbbb-0000-4000-8000-00000000000b', true);
set local role apportion_worker;
select is_empty(format($$select * from apportion.run_jobs('w-other', array[%s::bigint])$$, :ok_b),
  'worker, tenant B: run_jobs under another worker id skips the job w1 claimed');
reset role;
select is((select state from apportion.jobs where id = :ok_b), 'running', 'and leaves it running');
set local role apportion_worker;
select results_eq(format($$select job_id, outcome from apportion.run_jobs('w1', array[%s::bigint])$$, :ok_b),
  format($$values (%s::bigint, 'succeeded')$$, :ok_b),
  'twin: worker, tenant B, as w1: B''s job runs and succeeds');
select is_empty(format($$select * from apportion.run_jobs('w1', array[%s::bigint])$$, :ok_b),
  'running it again does nothing: it is no longer running');
reset role;
select is((select result ->> 'tenant_id' from apportion.jobs where id = :ok_b), 'bbbbbbbb-0000-4000-8000-00000000000b',
  'B''s handler ran under tenant B');

-- Retryable errors: back to the queue with backoff, then failed for good ------------
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'noop', '{"marker": "serial", "raise": "40001"}', 'cccccccc-0000-4000-8000-00000000000c') as serial \gset
select apportion.enqueue('housekeeping', 'noop', '{"marker": "lock", "raise": "55P03"}') as lock \gset
reset role;
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w1', array['housekeeping'], 10)), 2::bigint, 'attempt 1 of both claimed');
select set_eq(format($$select job_id, attempt, outcome, error_code from apportion.run_jobs('w1', array[%s, %s]::bigint[])$$, :serial, :lock),
  format($$values (%s::bigint, 1, 'retry', '40001'), (%s, 1, 'retry', '55P03')$$, :serial, :lock),
  'a 40001 and a 55P03 (lock not available) on attempt 1 of 3: both retry');
reset role;
select results_eq(format($$select state, attempts, error_code, error_message, locked_by, locked_until from apportion.jobs where id = %s$$, :serial),
  $$values ('queued', 1, '40001', 'qtest: 40001', null::text, null::timestamptz)$$,
  'the 40001 job is queued again with its error recorded and its lease cleared');
select ok((select run_at between now() + interval '0.75 seconds' and now() + interval '1.25 seconds' from apportion.jobs where id = :serial),
  'its run_at is 1 s (+-25% jitter) ahead: the first backoff');
select results_eq(format($$select jsonb_array_length(attempt_log), attempt_log -> 0 ->> 'outcome', attempt_log -> 0 ->> 'error_code',
                                  attempt_log -> 0 ->> 'error_message'
                             from apportion.jobs where id = %s$$, :serial),
  $$values (1, 'retry', '40001', 'qtest: 40001')$$, 'one attempt_log entry: retry, 40001, with the message');
select is((select count(*) from apportion.worker_failed_jobs where job_id in (:serial, :lock)), 0::bigint,
  'a job that will be retried is not in worker_failed_jobs');
select is((select count(*) from qtest.handler_writes where marker in ('serial', 'lock')), 0::bigint,
  'the failing handlers'' writes were rolled back');

-- While the backoff runs, the job is not claimable.
set local role apportion_worker;
select is_empty($$select * from apportion.claim_jobs('w1', array['housekeeping'], 10)$$, 'during the backoff nothing is claimed');
reset role;

-- Attempt 2 (the backoff is skipped by moving run_at back).
update apportion.jobs set run_at = now() where id = :serial;
set local role apportion_worker;
select results_eq($$select job_id, attempt from apportion.claim_jobs('w1', array['housekeeping'], 10)$$,
  format('values (%s::bigint, 2)', :serial), 'attempt 2 claimed');
select results_eq(format($$select attempt, outcome from apportion.run_jobs('w1', array[%s::bigint])$$, :serial),
  $$values (2, 'retry')$$, 'attempt 2 of 3 fails with 40001: retry');
reset role;
select ok((select run_at between now() + interval '1.5 seconds' and now() + interval '2.5 seconds' from apportion.jobs where id = :serial),
  'the backoff doubles: 2 s (+-25%) ahead');

-- Attempt 3 = max_attempts: failed for good.
update apportion.jobs set run_at = now() where id = :serial;
set local role apportion_worker;
select results_eq($$select job_id, attempt from apportion.claim_jobs('w1', array['housekeeping'], 10)$$,
  format('values (%s::bigint, 3)', :serial), 'attempt 3 claimed');
select results_eq(format($$select attempt, outcome, error_code from apportion.run_jobs('w1', array[%s::bigint])$$, :serial),
  $$values (3, 'failed', '40001')$$, 'attempt 3 of 3 fails with 40001: failed for good');
reset role;
select results_eq(format($$select state, attempts, error_code, locked_by from apportion.jobs where id = %s$$, :serial),
  $$values ('failed', 3, '40001', null::text)$$, 'the job is failed after 3 attempts');
select results_eq(format($$select array_agg(e ->> 'outcome' order by (e ->> 'attempt')::int) from apportion.jobs j, jsonb_array_elements(j.attempt_log) e
                            where j.id = %s$$, :serial),
  $$values (array['retry', 'retry', 'failed'])$$, 'attempt_log: retry, retry, failed');
select results_eq(format($$select tenant_id, job_id, queue, task, payload, error_code, error_message, attempts, correlation_id, status
                             from apportion.worker_failed_jobs where job_id = %s$$, :serial),
  format($$values ('aaaaaaaa-0000-4000-8000-00000000000a'::uuid, %s::bigint, 'housekeeping', 'noop', '{"marker": "serial", "raise": "40001"}'::jsonb,
                   '40001', 'qtest: 40001', 3, 'cccccccc-0000-4000-8000-00000000000c'::uuid, 'open')$$, :serial),
  'exactly one worker_failed_jobs row with tenant, queue, task, payload, error, attempts and correlation id');

-- A system job under a tenant's run: its handler sees no tenant --------------------
select set_config('app.tenant_id', '', true);
set local role apportion_worker;
select apportion.enqueue('housekeeping', 'noop', '{"marker": "sys"}') as sys \gset
select is((select count(*) from apportion.claim_jobs('w1', array['housekeeping'], 10)), 1::bigint, 'the system job claimed');
reset role;
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_worker;
select results_eq(format($$select job_id, outcome from apportion.run_jobs('w1', array[%s::bigint])$$, :sys),
  format($$values (%s::bigint, 'succeeded')$$, :sys), 'worker, tenant A: the system job runs and succeeds');
select is(current_setting('app.tenant_id'), 'aaaaaaaa-0000-4000-8000-00000000000a', 'and the caller''s tenant is set again afterwards');
reset role;
select is((select result ->> 'tenant_id' from apportion.jobs where id = :sys), '', 'the system job''s handler ran with no tenant set');

-- 57014 (query_canceled, e.g. a statement timeout) is retryable by
-- is_retryable, so it must be handled like 40001: the job retries, its
-- batch-mates commit. PL/pgSQL's WHEN OTHERS does not catch query_canceled,
-- and neither do pgTAP's lives_ok/throws_ok, hence this helper.
create function qtest.run_jobs_or_escape(p_worker_id text, p_job_ids bigint[])
returns text
language plpgsql
as $$
begin
  perform apportion.run_jobs(p_worker_id, p_job_ids);
  return 'returned';
exception when query_canceled then
  return format('escaped run_jobs: %s %s', sqlstate, sqlerrm);
end
$$;
grant execute on function qtest.run_jobs_or_escape(text, bigint[]) to apportion_worker;
set local role apportion_ingest;
select apportion.enqueue('housekeeping', 'noop', '{"marker": "mate"}') as mate \gset
select apportion.enqueue('housekeeping', 'noop', '{"marker": "canceled", "raise": "57014"}') as canceled \gset
select apportion.enqueue('housekeeping', 'noop', '{"marker": "after-cancel"}') as after_cancel \gset
reset role;
update apportion.jobs set run_at = now() + interval '1 hour' where state = 'queued' and id not in (:mate, :canceled, :after_cancel);
set local role apportion_worker;
select is((select count(*) from apportion.claim_jobs('w1', array['housekeeping'], 10)), 3::bigint, 'a job raising 57014 and its two batch-mates claimed');
select is(qtest.run_jobs_or_escape('w1', array[:mate, :canceled, :after_cancel]::bigint[]), 'returned',
  'a handler raising 57014 does not abort run_jobs');
reset role;
select results_eq(format($$select state, error_code from apportion.jobs where id = %s$$, :canceled),
  $$values ('queued', '57014')$$, 'the 57014 job is queued for a retry with its error recorded');
select is((select state from apportion.jobs where id = :mate), 'succeeded', 'the batch-mate before it succeeded');
select results_eq(format($$select state, attempts, locked_by from apportion.jobs where id = %s$$, :after_cancel),
  $$values ('queued', 0, null::text)$$,
  'the batch-mate after it is given back unstarted (a cancel ends the batch: the job timeout frees the runner), its attempt not counted');
select is((select count(*) from qtest.handler_writes where marker = 'after-cancel'), 0::bigint, 'and its handler never ran');

-- The retry rule: serialization, deadlock, timeout, resources and internal
-- errors are retried; classes 22, 23, 42 and our AP codes never succeed on
-- retry, so their job fails at once (each job on attempt 1 of 3).
update apportion.jobs set run_at = now() + interval '1 hour' where state = 'queued';
select set_config('app.tenant_id', 'aaaaaaaa-0000-4000-8000-00000000000a', true);
set local role apportion_ingest;
select count(*) from apportion.enqueue_many('housekeeping', 'noop',
  (select jsonb_agg(jsonb_build_object('marker', 'rule-' || c, 'raise', c) order by c)
     from unnest(array['40001', '40P01', '53300', 'XX000', '22023', '22P02', '23505', '42501', '42P01', 'AP001', 'AP002']) c))
  \g /dev/null
reset role;
set local role apportion_worker;
select results_eq(
  $$select o.error_code, o.outcome
      from apportion.run_jobs('w1', array(select c.job_id from apportion.claim_jobs('w1', array['housekeeping'], 100) c)) o
     order by o.error_code$$,
  $$values ('22023', 'failed'), ('22P02', 'failed'), ('23505', 'failed'), ('40001', 'retry'), ('40P01', 'retry'),
           ('42501', 'failed'), ('42P01', 'failed'), ('53300', 'retry'), ('AP001', 'failed'),
           ('AP002', 'failed'), ('XX000', 'retry')$$,
  'retried: 40001, 40P01, 53300, XX000 (and 57014, above); failed at once: classes 22, 23, 42 and AP');
reset role;

select * from finish();
rollback;
