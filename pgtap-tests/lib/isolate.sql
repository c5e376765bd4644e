-- Included right after BEGIN by every suite file that reads or writes data
-- (lib/fixtures.sql includes it).
-- Each file starts from an apportion that holds no data, whatever the
-- database holds (`apportion test` runs this suite where apportion is in
-- use): every apportion table but the ones migrations fill (the task
-- registry, time_decay's constants, the migration records) is emptied in
-- this transaction, which the file rolls back, so the rows come back
-- untouched. TRUNCATE locks those tables until then (and, through CASCADE,
-- empties for that long any table of yours with a foreign key to them).
do $isolate$
declare
  v_tables text;
begin
  select string_agg(format('%I.%I', n.nspname, c.relname), ', ' order by c.relname) into v_tables
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'apportion' and c.relkind in ('r', 'p') and not c.relispartition
     and c.relname not in ('queue_tasks', 'half_life_factors', 'schema_migrations', 'db_sources');
  -- A busy database makes this wait for its locks, not forever.
  perform set_config('lock_timeout', '30s', true);
  execute 'truncate ' || v_tables || ' cascade';
  perform set_config('lock_timeout', '0', true);
end
$isolate$;
