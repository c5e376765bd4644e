begin;
\ir lib/isolate.sql
select plan(1);
select has_schema('apportion');
select * from finish();
rollback;
