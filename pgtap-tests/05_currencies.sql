-- Currencies: the ISO 4217 codes with minor units, generated from the list
-- the currency-codes package ships; codes without minor units and unknown
-- codes refused at ingest; major units by each currency's exponent; reports
-- never add two currencies.
begin;
\ir lib/fixtures.sql
select plan(12);

select is((select count(*) from apportion.iso_currencies()), 166::bigint, '166 ISO 4217 codes with minor units (list of 2024-06-25)');
select results_eq($$select code, minor_units from apportion.iso_currencies() where code in ('JPY', 'USD', 'KWD', 'CLF', 'EUR') order by code$$,
                  $$values ('CLF', 4), ('EUR', 2), ('JPY', 0), ('KWD', 3), ('USD', 2)$$,
                  'minor units: JPY 0, USD and EUR 2, KWD 3, CLF 4');
select is((select count(*) from apportion.iso_currencies() where code in ('XAU', 'XDR', 'XXX', 'XTS')), 0::bigint,
          'codes without minor units (gold, SDR, no currency, testing) are not among them');

\o /dev/null
select apportion_test.make_tenant('currencies', '00000000-0000-4000-8000-0000000000c5');
select apportion.register_model('cur-last', 'last_touch');
\o
select apportion_test.as_role('apportion_ingest', '00000000-0000-4000-8000-0000000000c5') \g /dev/null
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2025-06-01', 100, 'XAU')$$,
  '23514', 'new row for relation "attribution_events" violates check constraint "attribution_events_currency_iso_4217_with_minor_units"',
  'a code without minor units (XAU) is refused at ingest, the constraint naming the rule');
select throws_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values ('c1', '2025-06-01', 100, 'ABC')$$,
  '23514', 'new row for relation "attribution_events" violates check constraint "attribution_events_currency_iso_4217_with_minor_units"',
  'an unknown code is refused');
select lives_ok($$insert into apportion.attribution_events (customer_id, occurred_at, revenue_cents, currency) values
                   ('c1', '2025-06-01 10:00Z', 1234, 'JPY'), ('c2', '2025-06-01 11:00Z', 1234, 'USD'), ('c3', '2025-06-01 12:00Z', 1234, 'KWD'),
                   ('c4', '2025-06-01 13:00Z', 1000, 'USD')$$,
                'JPY, USD and KWD are accepted');

select is(apportion.major_units(1234, 'JPY'), 1234::numeric, 'JPY 1234 = 1234');
select is(apportion.major_units(1234, 'USD'), 12.34, 'USD 1234 = 12.34');
select is(apportion.major_units(1234, 'KWD'), 1.234, 'KWD 1234 = 1.234');
select throws_ok($$select apportion.major_units(1, 'XAU')$$, '22023', 'currency ''XAU'' is not an ISO 4217 code with minor units',
                 'major units of a code without minor units: 22023');

select apportion_test.as_role('apportion_worker', '00000000-0000-4000-8000-0000000000c5') \g /dev/null
select apportion.recompute_window('2025-06-01', '2025-06-02', 'cur-last') \g /dev/null
select apportion_test.as_role('apportion_reader', '00000000-0000-4000-8000-0000000000c5') \g /dev/null
select results_eq($$select currency::text, revenue_cents, revenue_major from apportion.daily_channel_revenue order by currency$$,
                  $$values ('JPY', 1234::numeric, 1234::numeric), ('KWD', 1234, 1.234), ('USD', 2234, 22.34)$$,
                  'the daily report: one row per currency, in minor and major units, never summed across currencies');
select is((select count(distinct currency) from apportion.daily_channel_net_revenue), 3::bigint, 'the net report keeps currencies apart too');

select * from finish();
rollback;
