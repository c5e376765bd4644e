-- Model versions: registration, validation, immutability, per-tenant activation.
--
-- A model version is an immutable (kind, params). Params (jsonb):
--   every kind:      lookback (interval text, at most 10 years, default '30 days'),
--                    fallback_channel (channel code, default 'unattributed')
--   time_decay:      half_life (interval text, at most 10 years, default '7 days')
--   position_based:  first, last (numbers, default 0.4 each)
--   fixed_split:     channels (array of channel codes, required),
--                    weights (array of numbers summing to 1, optional)
--   markov:          training_start, training_end (ISO-8601 timestamps,
--                    required; without an offset they are UTC): the
--                    training window [start, end), in years 1..9999

-- Raise 22023 unless a jsonb value is an interval text in (0, 10 years].
create or replace function apportion.param_interval(p_params jsonb, p_key text, p_default interval)
returns interval
language plpgsql immutable
as $$
declare
  v jsonb := p_params -> p_key;
  v_interval interval;
begin
  if v is null then
    return p_default;
  end if;
  if jsonb_typeof(v) <> 'string' then
    raise exception 'model params: % must be an interval as text, like "30 days" (got %)', p_key, v
      using errcode = '22023';
  end if;
  begin
    v_interval := (v #>> '{}')::interval;
  exception when others then
    raise exception 'model params: % must be an interval as text, like "30 days" (got %)', p_key, v
      using errcode = '22023';
  end;
  if v_interval <= interval '0' then
    raise exception 'model params: % must be positive (got %)', p_key, v using errcode = '22023';
  end if;
  -- Bounded, so that no event's window leaves the timestamp range (events
  -- and touches lie in years 1..9999).
  if v_interval > interval '10 years' then
    raise exception 'model params: % must be at most 10 years (got %)', p_key, v using errcode = '22023';
  end if;
  return v_interval;
end
$$;
grant execute on function apportion.param_interval(jsonb, text, interval) to apportion_ingest, apportion_worker, apportion_allocator;
comment on function apportion.param_interval(jsonb, text, interval) is
  'A model param (or payload field) p_key read as an interval: p_default when absent. Errors: 22023, naming the field, unless it is an interval as text, positive and at most 10 years.';

-- A model's lookback: its lookback param, or 30 days (22023 if invalid).
-- Read wherever the lookback rule is applied (allocation, training,
-- restatement of late touchpoints).
create or replace function apportion.model_lookback(p_params jsonb)
returns interval
language sql immutable
as $$
  select apportion.param_interval(p_params, 'lookback', interval '30 days')
$$;
grant execute on function apportion.model_lookback(jsonb) to apportion_ingest, apportion_worker, apportion_allocator;
comment on function apportion.model_lookback(jsonb) is
  'A model''s lookback: its lookback param, or 30 days. Read wherever the lookback rule applies: allocation, training, and the restatement of late touchpoints (as ingest). Errors: 22023 for an invalid lookback.';

-- Raise 22023 unless a jsonb value is a number in [0, 1].
create or replace function apportion.param_share(p_params jsonb, p_key text, p_default numeric)
returns numeric
language plpgsql immutable
as $$
declare
  v jsonb := p_params -> p_key;
begin
  if v is null then
    return p_default;
  end if;
  if jsonb_typeof(v) <> 'number' or (v::text)::numeric < 0 or (v::text)::numeric > 1 then
    raise exception 'model params: % must be a number between 0 and 1 (got %)', p_key, v using errcode = '22023';
  end if;
  return (v::text)::numeric;
end
$$;
grant execute on function apportion.param_share(jsonb, text, numeric) to apportion_worker, apportion_allocator;
comment on function apportion.param_share(jsonb, text, numeric) is
  'A model param p_key read as a share: p_default when absent. Errors: 22023, naming the field, unless it is a number between 0 and 1.';

-- Raise 22023 unless a jsonb value is an ISO-8601 timestamp in years
-- 1..9999: a date, or a date and time with an optional offset (none means
-- UTC, so the value never depends on the session's time zone).
create or replace function apportion.param_timestamp(p_params jsonb, p_key text)
returns timestamptz
language plpgsql immutable
as $$
declare
  v jsonb := p_params -> p_key;
  v_text text;
  v_at timestamptz;
begin
  if v is null then
    raise exception 'model params: % is required, an ISO-8601 timestamp like "2025-06-01T00:00:00Z"', p_key
      using errcode = '22023';
  end if;
  v_text := v #>> '{}';
  if jsonb_typeof(v) <> 'string'
     or v_text !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$' then
    raise exception 'model params: % must be an ISO-8601 timestamp like "2025-06-01T00:00:00Z" (got %)', p_key, v
      using errcode = '22023';
  end if;
  begin
    if v_text ~ '(Z|[+-]\d{2}(:?\d{2})?)$' and v_text ~ 'T|\s' then
      v_at := v_text::timestamptz;
    else
      v_at := v_text::timestamp at time zone 'UTC';
    end if;
  exception when others then
    raise exception 'model params: % must be an ISO-8601 timestamp like "2025-06-01T00:00:00Z" (got %)', p_key, v
      using errcode = '22023';
  end;
  if v_at < timestamptz '0001-01-01 00:00:00+00' or v_at >= timestamptz '10000-01-01 00:00:00+00' then
    raise exception 'model params: % must lie in years 1 to 9999 (got %)', p_key, v using errcode = '22023';
  end if;
  return v_at;
end
$$;
grant execute on function apportion.param_timestamp(jsonb, text) to apportion_worker, apportion_allocator;
comment on function apportion.param_timestamp(jsonb, text) is
  'A model param p_key read as a timestamp: an ISO-8601 date, or date and time with an optional offset (none means UTC). Errors: 22023, naming the field, when it is absent, not such a timestamp, or outside years 1 to 9999.';

-- A markov version's training window [training_start, training_end),
-- validated: both required, start before end.
create or replace function apportion.markov_training_window(p_params jsonb, out training_start timestamptz, out training_end timestamptz)
language plpgsql immutable
as $$
begin
  training_start := apportion.param_timestamp(p_params, 'training_start');
  training_end := apportion.param_timestamp(p_params, 'training_end');
  if training_end <= training_start then
    raise exception 'model params: training_end (%) must be after training_start (%)',
      p_params ->> 'training_end', p_params ->> 'training_start' using errcode = '22023';
  end if;
end
$$;
grant execute on function apportion.markov_training_window(jsonb) to apportion_worker, apportion_allocator;
comment on function apportion.markov_training_window(jsonb) is
  'A markov version''s training window [training_start, training_end) from its params. Errors: 22023 when either is missing or invalid, or the end is not after the start.';

-- A model's params with defaults applied, validated. Raises 22023 naming
-- the field and the rule on any invalid input.
create or replace function apportion.resolve_model_params(p_kind text, p_params jsonb)
returns table (
  lookback interval,
  fallback_channel text,
  half_life_seconds numeric,
  first_share numeric,
  last_share numeric,
  split_channels text[],
  split_weights numeric[]
)
language plpgsql immutable
as $$
declare
  v_allowed text[] := array['lookback', 'fallback_channel'];
  v_key text;
  v_channels jsonb;
  v_weights jsonb;
  v_code text;
begin
  if p_kind is null or p_kind not in ('last_touch', 'last_non_direct', 'first_touch', 'linear',
                                      'time_decay', 'position_based', 'fixed_split', 'markov') then
    raise exception 'model kind % is unknown; known kinds: last_touch, last_non_direct, first_touch, linear, time_decay, position_based, fixed_split, markov', coalesce(quote_literal(p_kind), 'null')
      using errcode = '22023';
  end if;
  if p_params is null or jsonb_typeof(p_params) <> 'object' then
    raise exception 'model params must be a json object (got %)', coalesce(p_params::text, 'null') using errcode = '22023';
  end if;

  v_allowed := v_allowed || case p_kind
    when 'time_decay' then array['half_life']
    when 'position_based' then array['first', 'last']
    when 'fixed_split' then array['channels', 'weights']
    when 'markov' then array['training_start', 'training_end']
    else array[]::text[] end;
  for v_key in select jsonb_object_keys(p_params) loop
    if not v_key = any (v_allowed) then
      raise exception 'model params: % is not a parameter of kind % (allowed: %)', v_key, p_kind, array_to_string(v_allowed, ', ')
        using errcode = '22023';
    end if;
  end loop;

  lookback := apportion.model_lookback(p_params);
  fallback_channel := coalesce(p_params ->> 'fallback_channel', 'unattributed');
  if jsonb_typeof(p_params -> 'fallback_channel') is distinct from 'string' and p_params ? 'fallback_channel'
     or fallback_channel !~ '^[a-z][a-z0-9_]{0,62}$' then
    raise exception 'model params: fallback_channel must be a channel code (got %)', p_params -> 'fallback_channel'
      using errcode = '22023';
  end if;

  if p_kind = 'time_decay' then
    half_life_seconds := extract(epoch from apportion.param_interval(p_params, 'half_life', interval '7 days'));
  end if;

  if p_kind = 'markov' then
    -- The training window is read by train_model (markov_training_window);
    -- here it is only validated.
    perform apportion.markov_training_window(p_params);
  end if;

  if p_kind = 'position_based' then
    first_share := apportion.param_share(p_params, 'first', 0.4);
    last_share := apportion.param_share(p_params, 'last', 0.4);
    if first_share + last_share > 1 then
      raise exception 'model params: first + last must not exceed 1 (got % + % = %)', first_share, last_share, first_share + last_share
        using errcode = '22023';
    end if;
  end if;

  if p_kind = 'fixed_split' then
    v_channels := p_params -> 'channels';
    if v_channels is null or jsonb_typeof(v_channels) <> 'array' or jsonb_array_length(v_channels) = 0 then
      raise exception 'model params: fixed_split needs channels, a non-empty array of channel codes' using errcode = '22023';
    end if;
    for v_code in select value #>> '{}' from jsonb_array_elements(v_channels) loop
      if v_code is null or v_code !~ '^[a-z][a-z0-9_]{0,62}$' then
        raise exception 'model params: channels must hold channel codes (got %)', v_channels using errcode = '22023';
      end if;
    end loop;
    select array_agg(value #>> '{}' order by ordinality) into split_channels
      from jsonb_array_elements(v_channels) with ordinality;
    if (select count(distinct c) from unnest(split_channels) c) <> cardinality(split_channels) then
      raise exception 'model params: channels must not repeat a channel (got %)', v_channels using errcode = '22023';
    end if;
    v_weights := p_params -> 'weights';
    if v_weights is null then
      -- Equal shares: exact fractions are kept by the engine (weight = 1/n).
      split_weights := null;
    else
      if jsonb_typeof(v_weights) <> 'array' or jsonb_array_length(v_weights) <> cardinality(split_channels) then
        raise exception 'model params: weights must be an array with one number per channel (% channels, got %)', cardinality(split_channels), v_weights
          using errcode = '22023';
      end if;
      if exists (select from jsonb_array_elements(v_weights) w where jsonb_typeof(w) <> 'number' or (w::text)::numeric < 0) then
        raise exception 'model params: weights must be non-negative numbers (got %)', v_weights using errcode = '22023';
      end if;
      select array_agg((value::text)::numeric order by ordinality) into split_weights
        from jsonb_array_elements(v_weights) with ordinality;
      if (select sum(w) from unnest(split_weights) w) <> 1 then
        raise exception 'model params: weights must sum to exactly 1 (got %, sum %)', v_weights, (select sum(w) from unnest(split_weights) w)
          using errcode = '22023';
      end if;
    end if;
  end if;
  return next;
end
$$;
grant execute on function apportion.resolve_model_params(text, jsonb) to apportion_worker, apportion_allocator;
comment on function apportion.resolve_model_params(text, jsonb) is
  'A model''s params with defaults applied and validated, one row: lookback, fallback channel, half-life, position shares, fixed_split channels and weights (docs/attribution.md). Errors: 22023, naming the field and the rule, for an unknown kind, a param the kind does not take, or an invalid value.';

-- Admin: register a model version. The same definition again is a no-op; a
-- different definition under an existing version is an error.
create or replace function apportion.register_model(p_model_version text, p_kind text, p_params jsonb default '{}')
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
declare
  v_existing apportion.attribution_models;
  v_params record;
  v_unknown text[];
begin
  if p_model_version is null or p_model_version !~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$' then
    raise exception 'register_model: model_version must be 1-64 characters of letters, digits and ._+- starting with a letter or digit (got %)', coalesce(quote_literal(p_model_version), 'null')
      using errcode = '22023';
  end if;
  select * into v_params from apportion.resolve_model_params(p_kind, coalesce(p_params, 'null'::jsonb));

  -- Channels must be known: in the default taxonomy or some tenant's.
  select array_agg(c) into v_unknown
    from unnest(array[v_params.fallback_channel] || coalesce(v_params.split_channels, array[]::text[])) c
   where not exists (select from apportion_internal.default_channels() d where d.code = c)
     and not exists (select from apportion.channels ch where ch.code = c);
  if v_unknown is not null then
    raise exception 'register_model: unknown channel(s) %: not in the default taxonomy nor any tenant''s', array_to_string(v_unknown, ', ')
      using errcode = '22023';
  end if;

  select * into v_existing from apportion.attribution_models where model_version = p_model_version for update;
  if found then
    if v_existing.kind = p_kind and v_existing.params = p_params then
      return;
    end if;
    raise exception 'register_model: model version % is already registered as % %; a model version is immutable, register a new version instead',
      p_model_version, v_existing.kind, v_existing.params using errcode = '23505';
  end if;
  insert into apportion.attribution_models (model_version, kind, params) values (p_model_version, p_kind, p_params);
end
$$;
comment on function apportion.register_model(text, text, jsonb) is
  'Validates and registers a model version (kind and params, docs/attribution.md). The same definition again is a no-op; a model version never changes. Errors: 22023 for an invalid version name, kind or params, or a channel in no taxonomy; 23505 when the version is registered with another definition.';

-- Model versions never change once registered.
create or replace function apportion_internal.forbid_model_change()
returns trigger
language plpgsql
as $$
begin
  if new.kind is distinct from old.kind or new.params is distinct from old.params
     or new.model_version is distinct from old.model_version then
    raise exception 'model version % is immutable: register a new version instead of changing it', old.model_version
      using errcode = '23514';
  end if;
  return new;
end
$$;

create or replace trigger attribution_models_immutable
  before update on apportion.attribution_models
  for each row execute function apportion_internal.forbid_model_change();

-- time_decay's factors for one half-life of p_half_life_us microseconds
-- (db/20_allocation.sql reads them): 2^-(d * 1000^k / half_life) for every
-- base-1000 digit d a remainder below the half-life can have at place k
-- (part k, 0..4; a half-life is at most 10 years, under 1000^5 us), from a
-- power() at 60 decimal places rounded half up to 50; and 2^-q for whole
-- half-lives q = 0..133 (part 5), exact, rounded half up to 50. (The
-- dividend carries 61 decimal places: numeric division keeps only as many
-- as its operands have, about 20 for integers.) Each
-- factor is within 5.000001e-51 of its exact value. Computed once per
-- half-life (about 4,000 rows; a second call finds them and returns).
create or replace function apportion_internal.ensure_half_life_factors(p_half_life_us bigint)
returns void
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  if exists (select from apportion.half_life_factors f where f.half_life_us = p_half_life_us) then
    return;
  end if;
  insert into apportion.half_life_factors (half_life_us, part, digits, factor)
  select p_half_life_us, p.part, d.digits,
         round(power(2::numeric, -round(round(d.digits * 1000::numeric ^ p.part, 61) / p_half_life_us, 60)), 50)
    from generate_series(0, 4) p (part)
   cross join lateral generate_series(0, least(999, div(p_half_life_us - 1, 1000::numeric ^ p.part))::int) d (digits)
  union all
  select p_half_life_us, 5, q, round(5::numeric ^ q * ('1e-' || q)::numeric, 50)
    from generate_series(0, 133) q;
end
$$;

create or replace function apportion_internal.model_registered()
returns trigger
language plpgsql
set search_path = pg_catalog, pg_temp
as $$
begin
  perform apportion_internal.ensure_half_life_factors((p.half_life_seconds * 1000000)::bigint)
     from apportion.resolve_model_params(new.kind, new.params) p;
  return null;
end
$$;

create or replace trigger attribution_models_half_life_factors
  after insert on apportion.attribution_models
  for each row when (new.kind = 'time_decay')
  execute function apportion_internal.model_registered();

-- Models registered before the factors were kept per half-life.
select apportion_internal.ensure_half_life_factors((p.half_life_seconds * 1000000)::bigint)
  from apportion.attribution_models m
 cross join lateral apportion.resolve_model_params(m.kind, m.params) p
 where m.kind = 'time_decay';

-- Raise 22023 unless the model version is registered.
create or replace function apportion.require_model(p_model_version text)
returns apportion.attribution_models
language plpgsql stable
as $$
declare
  v_model apportion.attribution_models;
begin
  select * into v_model from apportion.attribution_models where model_version = p_model_version;
  if not found then
    raise exception 'model version % is not registered', coalesce(quote_literal(p_model_version), 'null')
      using errcode = '22023';
  end if;
  return v_model;
end
$$;
grant execute on function apportion.require_model(text) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.require_model(text) is
  'The registered model version. Errors: 22023 when it is not registered.';

-- Current tenant: compute this model automatically for new events.
create or replace function apportion.activate_model(p_model_version text)
returns void
language plpgsql
as $$
declare
  v_tenant uuid := apportion.require_tenant();
begin
  perform apportion.require_model(p_model_version);
  insert into apportion.tenant_models (tenant_id, model_version)
  values (v_tenant, p_model_version)
  on conflict do nothing;
end
$$;
grant execute on function apportion.activate_model(text) to apportion_ingest;
comment on function apportion.activate_model(text) is
  'Has the current tenant''s new events allocated under this model version automatically (idempotent). Errors: 42501 when no tenant is set; 22023 when the version is not registered.';

-- Current tenant: stop computing this model automatically.
create or replace function apportion.deactivate_model(p_model_version text)
returns void
language plpgsql
as $$
declare
  v_tenant uuid := apportion.require_tenant();
begin
  perform apportion.require_model(p_model_version);
  delete from apportion.tenant_models
   where tenant_id = v_tenant and model_version = p_model_version;
end
$$;
grant execute on function apportion.deactivate_model(text) to apportion_ingest;
comment on function apportion.deactivate_model(text) is
  'Stops allocating the current tenant''s new events under this model version automatically. Errors: 42501 when no tenant is set; 22023 when the version is not registered.';

-- Tables -----------------------------------------------------------------------

alter table apportion.tenant_models alter column tenant_id set default apportion.current_tenant_id();

select apportion_internal.define_tenant_policies('apportion.tenant_models');

-- Model versions are global definitions, not tenant data: no RLS.
grant select on apportion.attribution_models, apportion.tenant_models to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
grant insert, delete on apportion.tenant_models to apportion_ingest;

comment on table apportion.attribution_models is
  'The registered model versions (register_model): global definitions, not tenant data. A version never changes (an update is refused with 23514): register a new one.';
comment on column apportion.attribution_models.model_version is 'The version''s name: 1 to 64 letters, digits and ._+-, starting with a letter or digit.';
comment on column apportion.attribution_models.kind is
  'last_touch, last_non_direct, first_touch, linear, time_decay, position_based, fixed_split or markov.';
comment on column apportion.attribution_models.params is 'The kind''s params as registered, a json object (docs/attribution.md).';

comment on table apportion.tenant_models is
  'Each tenant''s active model versions: its new events are allocated under each automatically (activate_model, deactivate_model).';
comment on column apportion.tenant_models.tenant_id is 'The tenant (defaults to the current one).';
comment on column apportion.tenant_models.model_version is 'An active model version.';
