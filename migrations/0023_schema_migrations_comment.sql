-- Up Migration
-- Every table in apportion has a comment (docs/sql-api.md). The others are
-- in db/, applied as apportion_owner; node-pg-migrate's bookkeeping table
-- belongs to whoever first ran migrate, so its comment is set here, as the
-- migrating user, and only when that user may (a later migrator that is
-- neither superuser nor a member of the table's owner leaves it unset).
do $$
begin
  if pg_has_role(current_user, (select c.relowner from pg_class c where c.oid = 'apportion.schema_migrations'::regclass), 'usage') then
    comment on table apportion.schema_migrations is
      'The versioned migrations (migrations/) applied, in order: node-pg-migrate''s bookkeeping, written by migrate only.';
  end if;
end
$$;
