-- Currencies: the ISO 4217 codes with minor units (generated into
-- migrations/0020_iso_4217_currencies.sql by `npm run currencies`), and
-- amounts in major units. Amounts stay in minor units everywhere; nothing
-- adds amounts of two currencies.

-- Minor units of a currency as major units, exactly: JPY 1234 = 1234,
-- USD 1234 = 12.34, KWD 1234 = 1.234. Raises 22023 for a code without
-- minor units or an unknown one.
create or replace function apportion.major_units(p_minor numeric, p_currency text)
returns numeric
language plpgsql immutable parallel safe
as $$
declare
  v_units integer := apportion.currency_minor_units(p_currency);
begin
  if v_units is null then
    raise exception 'currency % is not an ISO 4217 code with minor units', coalesce(quote_literal(p_currency), 'null')
      using errcode = '22023', hint = 'See apportion.iso_currencies() for the codes apportion accepts.';
  end if;
  return round(p_minor / (10::numeric ^ v_units), v_units);
end
$$;

grant execute on function apportion.iso_currencies(), apportion.currency_minor_units(text), apportion.major_units(numeric, text)
  to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
-- (iso_currencies and currency_minor_units are generated into the migration
-- that holds the list; their comments are here, with their grants.)
comment on function apportion.iso_currencies() is
  'The ISO 4217 codes apportion accepts, with their minor units (JPY 0, USD 2, KWD 3) and ISO names; generated from the ISO list by npm run currencies.';
comment on function apportion.currency_minor_units(text) is
  'The minor units of an ISO 4217 code apportion accepts, or null for any other code (the currency constraint of attribution_events reads it).';
comment on function apportion.major_units(numeric, text) is
  'An amount in minor units as major units of its currency, exactly: JPY 1234 = 1234, USD 1234 = 12.34, KWD 1234 = 1.234. Errors: 22023 for a code apportion does not accept.';
