-- Kind markov: a first-order Markov chain over channels, trained per tenant,
-- solved exactly (docs/attribution.md, "Data-driven model: markov").
--
-- Training (train_model) reads the tenant's data in one statement
-- (markov_transition_counts over markov_paths), solves the absorbing chain
-- in exact integer arithmetic (markov_solve) and freezes the result in
-- apportion.trained_models, markov_transitions and markov_removal_effects.
-- Allocation (db/20_allocation.sql) weighs an event's channels by their
-- frozen removal effects.

-- The steps of the tenant's training paths, consecutive repeats collapsed,
-- in path order: one path per event with occurred_at in [p_start, p_end)
-- that has eligible touches (the lookback rule of allocation: same
-- customer, event time - lookback <= touch time <= event time), and one per
-- customer of the touches with occurred_at in [p_start, p_end) that count
-- for none of the customer's events (any event, in or out of the window).
-- path_key is the event id (converting) or the customer id (not).
-- Windows are computed on the UTC wall clock, as allocation does.
create or replace function apportion.markov_paths(
  p_tenant uuid,
  p_lookback interval,
  p_start timestamptz,
  p_end timestamptz
)
returns table (converting boolean, path_key text, step bigint, channel text, last_step boolean)
language sql stable
as $$
  with ev as materialized (
    -- (Bounds precomputed: under row level security only a plain
    -- comparison can be an index condition.)
    select e.id, e.customer_id, e.occurred_at,
           (e.occurred_at at time zone 'UTC' - p_lookback) at time zone 'UTC' as window_from
      from apportion.attribution_events e
     where e.tenant_id = p_tenant and e.occurred_at >= p_start and e.occurred_at < p_end
  ),
  converting_touch as (
    select true as converting, ev.id::text as path_key, t.channel, t.occurred_at, t.id
      from ev
      join apportion.touchpoints t
        on t.tenant_id = p_tenant and t.customer_id = ev.customer_id
       and t.occurred_at >= ev.window_from and t.occurred_at <= ev.occurred_at
  ),
  -- A touch counts for some event of its customer iff it counts for the
  -- customer's first event at or after it (event time - lookback only grows
  -- with the event's time): a running minimum over the customer's touches
  -- and events, newest first (events before touches at equal times, since
  -- a touch at the event's time counts). Events are read a few days past
  -- end + lookback (month and year lengths vary); the rule itself is
  -- allocation's, exactly.
  stream as (
    select t.customer_id, t.occurred_at, t.id, t.channel, false as is_event
      from apportion.touchpoints t
     where t.tenant_id = p_tenant and t.occurred_at >= p_start and t.occurred_at < p_end
    union all
    select e.customer_id, e.occurred_at, e.id, null, true
      from apportion.attribution_events e
     where e.tenant_id = p_tenant and e.occurred_at >= p_start
       and e.occurred_at <= (p_end at time zone 'UTC' + p_lookback + interval '4 days') at time zone 'UTC'
  ),
  next_event as (
    select s.*, min(case when s.is_event then s.occurred_at end)
                  over (partition by s.customer_id order by s.occurred_at desc, s.is_event desc
                        rows between unbounded preceding and current row) as next_event_at
      from stream s
  ),
  null_touch as (
    select false as converting, n.customer_id as path_key, n.channel, n.occurred_at, n.id
      from next_event n
     where not n.is_event
       and (n.next_event_at is null or n.occurred_at < (n.next_event_at at time zone 'UTC' - p_lookback) at time zone 'UTC')
  ),
  touch as (
    select c.*, lag(c.channel) over w as previous_channel
      from (select * from converting_touch union all select * from null_touch) c
    window w as (partition by c.converting, c.path_key order by c.occurred_at, c.id)
  )
  select t.converting, t.path_key,
         row_number() over w,
         t.channel,
         lead(t.channel) over w is null
    from touch t
   where t.previous_channel is distinct from t.channel
  window w as (partition by t.converting, t.path_key order by t.occurred_at, t.id)
$$;
grant execute on function apportion.markov_paths(uuid, interval, timestamptz, timestamptz) to apportion_worker, apportion_allocator;
comment on function apportion.markov_paths(uuid, interval, timestamptz, timestamptz) is
  'The steps of a tenant''s markov training paths, consecutive repeats collapsed, in path order: one converting path per event in [p_start, p_end) with touches in its lookback, and one non-converting path per customer of the touches in the window that count for none of its events. A step of train_model.';

-- Transition counts of the tenant's training paths: each path makes
-- (start) -> c1 -> ... -> cn -> (conversion) or (null); a count is the
-- number of times paths make the transition (a path may make one twice, as
-- A > B > A > B; only consecutive repeats of a channel are collapsed).
create or replace function apportion.markov_transition_counts(
  p_tenant uuid,
  p_lookback interval,
  p_start timestamptz,
  p_end timestamptz
)
returns table (from_state text, to_state text, transition_count bigint)
language sql stable
as $$
  select v.from_state, v.to_state, count(*)
    from (select p.*, lag(p.channel) over (partition by p.converting, p.path_key order by p.step) as previous_channel
            from apportion.markov_paths(p_tenant, p_lookback, p_start, p_end) p) p
   cross join lateral (
     values (coalesce(p.previous_channel, '(start)'), p.channel),
            (p.channel, case when not p.last_step then null
                             when p.converting then '(conversion)' else '(null)' end)
   ) v (from_state, to_state)
   where v.to_state is not null
   group by v.from_state, v.to_state
$$;
grant execute on function apportion.markov_transition_counts(uuid, interval, timestamptz, timestamptz) to apportion_worker, apportion_allocator;
comment on function apportion.markov_transition_counts(uuid, interval, timestamptz, timestamptz) is
  'The transition counts of a tenant''s markov training paths (markov_paths, same arguments): (start) -> channels -> (conversion) or (null), in one statement. A step of train_model.';

-- Solve the absorbing chain given by transition counts, exactly.
--
-- Unknowns x_i = P(conversion | at channel i). With N_i the count of
-- transitions out of i and n_ij the counts between states, each channel
-- gives one equation with integer coefficients:
--   N_i x_i - sum_j n_ij x_j = n_i,conversion        (M x = b)
-- and P(conversion) = sum_j n_start,j x_j / N_start. Every channel has a
-- way to absorption, so M is a nonsingular M-matrix.
-- Removing channel c sends every transition into c to (null): the system
-- with row c replaced by x_c = 0. Its solution is x - (x_c / G_cc) G e_c
-- with G = M^-1 (the change to row c is a rank-one update), so with
-- T = sum_j n_start,j x_j and S_c = sum_j n_start,j G_jc:
--   RE_c = 1 - P_without_c / P = x_c S_c / (G_cc T)
-- One fraction-free Gauss-Jordan elimination of [M | I | b] (Bareiss: every
-- division is exact, every entry an integer) gives det * G and det * x,
-- whence P and every RE_c as integer ratios, reduced by gcd. No float, no
-- iteration: the same counts give the same fractions on any server.
-- Returns one row per channel; P(conversion) is repeated on each.
create or replace function apportion.markov_solve(p_from text[], p_to text[], p_count bigint[])
returns table (
  channel text,
  removal_effect_num numeric,
  removal_effect_den numeric,
  p_conversion_num numeric,
  p_conversion_den numeric
)
language plpgsql immutable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_channels text[];
  k integer;
  w integer;             -- columns of the augmented matrix: 2k + 1
  a numeric[];           -- k x (2k+1), row-major in one dimension
  s numeric[];           -- start counts per channel
  v_start_total numeric := 0;
  r integer;
  v_from integer;
  v_to integer;
  v_pivot numeric;
  v_previous numeric := 1;
  v_factor numeric;
  v_tmp numeric;
  v_det numeric;
  v_t numeric := 0;
  v_s numeric;
  v_num numeric;
  v_den numeric;
  v_g numeric;
  v_p_num numeric;
  v_p_den numeric;
begin
  select coalesce(array_agg(d.x order by d.x collate "C"), '{}')
    into v_channels
    from (select distinct x from unnest(p_from || p_to) x where left(x, 1) <> '(') d;
  k := cardinality(v_channels);
  w := 2 * k + 1;
  if k = 0 then
    return;
  end if;
  a := array_fill(0::numeric, array[k * w]);
  s := array_fill(0::numeric, array[k]);
  for i in 1 .. k loop
    a[(i - 1) * w + k + i] := 1;  -- the identity block
  end loop;

  for r in 1 .. cardinality(p_from) loop
    v_from := array_position(v_channels, p_from[r]);
    v_to := array_position(v_channels, p_to[r]);
    if p_from[r] = '(start)' then
      if v_to is null then
        raise exception 'markov_solve: a path must start at a channel (got (start) -> %)', p_to[r] using errcode = '22023';
      end if;
      s[v_to] := s[v_to] + p_count[r];
      v_start_total := v_start_total + p_count[r];
    elsif v_from is null then
      raise exception 'markov_solve: unknown state %', p_from[r] using errcode = '22023';
    else
      a[(v_from - 1) * w + v_from] := a[(v_from - 1) * w + v_from] + p_count[r];
      if v_to is not null then
        a[(v_from - 1) * w + v_to] := a[(v_from - 1) * w + v_to] - p_count[r];
      elsif p_to[r] = '(conversion)' then
        a[(v_from - 1) * w + w] := a[(v_from - 1) * w + w] + p_count[r];
      elsif p_to[r] is distinct from '(null)' then
        raise exception 'markov_solve: unknown state %', p_to[r] using errcode = '22023';
      end if;
    end if;
  end loop;
  if v_start_total = 0 then
    raise exception 'markov_solve: no transitions out of (start)' using errcode = '22023';
  end if;

  -- Fraction-free Gauss-Jordan: for each pivot row c, every other row i
  -- becomes (a_cc * row_i - a_ic * row_c) / previous pivot, exactly.
  for c in 1 .. k loop
    r := c;
    while a[(r - 1) * w + c] = 0 loop
      r := r + 1;
      if r > k then
        raise exception 'markov_solve: the chain has a channel with no way to absorption' using errcode = 'XX000';
      end if;
    end loop;
    if r <> c then
      for j in 1 .. w loop
        v_tmp := a[(r - 1) * w + j];
        a[(r - 1) * w + j] := a[(c - 1) * w + j];
        a[(c - 1) * w + j] := v_tmp;
      end loop;
    end if;
    v_pivot := a[(c - 1) * w + c];
    for i in 1 .. k loop
      continue when i = c;
      v_factor := a[(i - 1) * w + c];
      for j in 1 .. w loop
        continue when j = c;
        v_tmp := v_pivot * a[(i - 1) * w + j] - v_factor * a[(c - 1) * w + j];
        a[(i - 1) * w + j] := div(v_tmp, v_previous);
        if a[(i - 1) * w + j] * v_previous <> v_tmp then
          raise exception 'markov_solve: inexact elimination step (row %, column %)', i, j using errcode = 'XX000';
        end if;
      end loop;
      a[(i - 1) * w + c] := 0;
    end loop;
    v_previous := v_pivot;
  end loop;
  -- Now a = [det I | det G | det x] (the same det on the diagonal of every row).
  v_det := v_previous;

  for j in 1 .. k loop
    v_t := v_t + s[j] * a[(j - 1) * w + w];
  end loop;
  -- P = T / (det * N_start), T scaled by det.
  v_p_num := v_t;
  v_p_den := v_det * v_start_total;
  if v_p_den < 0 then
    v_p_num := -v_p_num;
    v_p_den := -v_p_den;
  end if;
  v_g := gcd(v_p_num, v_p_den);
  v_p_num := div(v_p_num, v_g);
  v_p_den := div(v_p_den, v_g);

  for c in 1 .. k loop
    channel := v_channels[c];
    p_conversion_num := v_p_num;
    p_conversion_den := v_p_den;
    if v_t = 0 then
      -- Nothing converts: no channel can lose anything.
      removal_effect_num := 0;
      removal_effect_den := 1;
    else
      v_s := 0;
      for j in 1 .. k loop
        v_s := v_s + s[j] * a[(j - 1) * w + k + c];
      end loop;
      v_num := a[(c - 1) * w + w] * v_s;
      v_den := a[(c - 1) * w + k + c] * v_t;
      if v_den < 0 then
        v_num := -v_num;
        v_den := -v_den;
      end if;
      v_g := gcd(v_num, v_den);
      if v_g = 0 then
        v_g := 1;
      end if;
      removal_effect_num := div(v_num, v_g);
      removal_effect_den := div(v_den, v_g);
    end if;
    return next;
  end loop;
end
$$;
grant execute on function apportion.markov_solve(text[], text[], bigint[]) to apportion_worker, apportion_allocator;
comment on function apportion.markov_solve(text[], text[], bigint[]) is
  'Solves the absorbing Markov chain of the given transition counts exactly, in integer arithmetic: per channel its removal effect as a fraction in lowest terms, and P(conversion) (repeated on each row). A step of train_model. Errors: 22023 for a path that does not start at a channel, an unknown state, or no transition out of (start); XX000 when a channel has no way to absorption.';

-- Raise 55000 unless the current tenant has trained this markov version.
create or replace function apportion.require_trained(p_model_version text)
returns apportion.trained_models
language plpgsql stable
as $$
declare
  v_tenant uuid := apportion.require_tenant();
  v_trained apportion.trained_models;
begin
  select * into v_trained from apportion.trained_models t
   where t.tenant_id = v_tenant and t.model_version = p_model_version;
  if not found then
    raise exception 'model version % (kind markov) is not trained for the current tenant', quote_literal(p_model_version)
      using errcode = '55000',
            hint = format('Call apportion.train_model(%L) or enqueue attribution.train_model {"model_version": %s} first.',
                          p_model_version, to_jsonb(p_model_version));
  end if;
  return v_trained;
end
$$;
grant execute on function apportion.require_trained(text) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.require_trained(text) is
  'The current tenant''s trained state of a markov version. Errors: 42501 when no tenant is set; 55000 when the tenant has not trained it.';

-- Train a markov version for the current tenant from its data as it is now,
-- and freeze the result. A trained (tenant, version) never changes:
-- training it again is an error (23505); register a new version instead.
-- Live-path work of this version that waited for the training is woken
-- when the caller may enqueue (the worker, through attribution.train_model);
-- otherwise it runs with the tenant's next live-path job of the version.
create or replace function apportion.train_model(p_model_version text)
returns table (
  model_version text,
  path_count bigint,
  conversion_count bigint,
  channel_count integer,
  p_conversion_num numeric,
  p_conversion_den numeric
)
language plpgsql
set search_path = pg_catalog, pg_temp
set jit = off
set max_parallel_workers_per_gather = 0
as $$
declare
  v_tenant uuid := apportion.require_tenant();
  v_model apportion.attribution_models := apportion.require_model(p_model_version);
  v_params record;
  v_window record;
  v_from text[];
  v_to text[];
  v_count bigint[];
  v_paths bigint;
  v_conversions bigint;
  v_channels text[];
  v_re_num numeric[];
  v_re_den numeric[];
  v_p_num numeric;
  v_p_den numeric;
  v_lcm numeric := 1;
  v_trained_at timestamptz;
begin
  if v_model.kind <> 'markov' then
    raise exception 'train_model: model version % is of kind %; only kind markov is trained', quote_literal(p_model_version), v_model.kind
      using errcode = '22023';
  end if;
  -- One training per (tenant, version) at a time; the second finds the first's.
  perform pg_advisory_xact_lock(hashtext('apportion.train_model'), hashtext(v_tenant::text || ':' || p_model_version));
  select t.trained_at into v_trained_at from apportion.trained_models t
   where t.tenant_id = v_tenant and t.model_version = p_model_version;
  if found then
    raise exception 'train_model: model version % is already trained for the current tenant (at %); trained state never changes',
      quote_literal(p_model_version), v_trained_at
      using errcode = '23505', hint = 'Register a new model version to train again.';
  end if;

  select * into v_params from apportion.resolve_model_params(v_model.kind, v_model.params);
  select * into v_window from apportion.markov_training_window(v_model.params);

  -- The tenant's data in one statement, so in one snapshot.
  select array_agg(c.from_state order by c.from_state collate "C", c.to_state collate "C"),
         array_agg(c.to_state order by c.from_state collate "C", c.to_state collate "C"),
         array_agg(c.transition_count order by c.from_state collate "C", c.to_state collate "C")
    into v_from, v_to, v_count
    from apportion.markov_transition_counts(v_tenant, v_params.lookback, v_window.training_start, v_window.training_end) c;
  if v_from is null then
    raise exception 'train_model: no paths to train % on: no touchpoints of the current tenant in its training window [%, %)',
      quote_literal(p_model_version), v_model.params ->> 'training_start', v_model.params ->> 'training_end'
      using errcode = '22023', hint = 'Register a version whose training window holds data.';
  end if;
  select coalesce(sum(x.n) filter (where x.f = '(start)'), 0), coalesce(sum(x.n) filter (where x.t = '(conversion)'), 0)
    into v_paths, v_conversions
    from unnest(v_from, v_to, v_count) x (f, t, n);

  select array_agg(s.channel order by s.channel collate "C"),
         array_agg(s.removal_effect_num order by s.channel collate "C"),
         array_agg(s.removal_effect_den order by s.channel collate "C"),
         min(s.p_conversion_num), min(s.p_conversion_den)
    into v_channels, v_re_num, v_re_den, v_p_num, v_p_den
    from apportion.markov_solve(v_from, v_to, v_count) s;

  -- The least common multiple of the denominators turns every removal
  -- effect into an integer weight.
  for i in 1 .. cardinality(v_re_den) loop
    v_lcm := div(v_lcm, gcd(v_lcm, v_re_den[i])) * v_re_den[i];
  end loop;

  insert into apportion.trained_models
    (tenant_id, model_version, path_count, conversion_count, p_conversion_num, p_conversion_den, correlation_id)
  values (v_tenant, p_model_version, v_paths, v_conversions, v_p_num, v_p_den,
          nullif(current_setting('app.correlation_id', true), '')::uuid);
  insert into apportion.markov_transitions (tenant_id, model_version, from_state, to_state, transition_count)
  select v_tenant, p_model_version, x.f, x.t, x.n from unnest(v_from, v_to, v_count) x (f, t, n);
  insert into apportion.markov_removal_effects
    (tenant_id, model_version, channel, removal_effect_num, removal_effect_den, weight)
  select v_tenant, p_model_version, x.c, x.num, x.den, x.num * div(v_lcm, x.den)
    from unnest(v_channels, v_re_num, v_re_den) x (c, num, den);

  -- Wake the live path's work that waited for this training (when the
  -- caller may enqueue: the worker, through attribution.train_model):
  -- always when the version is active for the tenant, since pending events
  -- committed while this runs are invisible here and their own job may
  -- have found the version untrained.
  if has_any_column_privilege('apportion.jobs', 'insert') then
    if exists (select from apportion.tenant_models m where m.tenant_id = v_tenant and m.model_version = p_model_version)
       or exists (select from apportion.pending_allocations p
                   where p.tenant_id = v_tenant and p.model_version = p_model_version) then
      insert into apportion.jobs (tenant_id, queue, task, payload)
      values (v_tenant, 'attribution', 'allocate_pending', jsonb_build_object('model_version', p_model_version));
    end if;
  end if;

  model_version := p_model_version;
  path_count := v_paths;
  conversion_count := v_conversions;
  channel_count := cardinality(v_channels);
  p_conversion_num := v_p_num;
  p_conversion_den := v_p_den;
  return next;
end
$$;
grant execute on function apportion.train_model(text) to apportion_worker, apportion_allocator;
comment on function apportion.train_model(text) is
  'Trains a markov version for the current tenant from its data as it is now, solved exactly, and freezes the result (trained_models, markov_transitions, markov_removal_effects); as the worker it also wakes the live path''s events of the version that waited for it. Until a tenant has trained a version, allocating it is 55000. Errors: 42501 when no tenant is set; 22023 when the version is not registered, not of kind markov, or its training window holds no touches; 23505 when the tenant has trained it already (register a new version).';

-- The current tenant's trained markov version, per channel: transitions in
-- and out, the removal effect RE_c exactly and rounded (half up, 6
-- decimals), its global share RE_c / sum(RE) likewise, and P(conversion).
create or replace function apportion.markov_summary(p_model_version text)
returns table (
  channel text,
  transitions_in bigint,
  transitions_out bigint,
  removal_effect_num numeric,
  removal_effect_den numeric,
  removal_effect numeric,
  share_num numeric,
  share_den numeric,
  share numeric,
  p_conversion_num numeric,
  p_conversion_den numeric,
  p_conversion numeric
)
language plpgsql stable
set search_path = pg_catalog, pg_temp
as $$
declare
  v_trained apportion.trained_models;
begin
  perform apportion.require_model(p_model_version);
  v_trained := apportion.require_trained(p_model_version);
  return query
  select e.channel,
         coalesce((select sum(t.transition_count) from apportion.markov_transitions t
                    where t.tenant_id = e.tenant_id and t.model_version = e.model_version and t.to_state = e.channel), 0)::bigint,
         coalesce((select sum(t.transition_count) from apportion.markov_transitions t
                    where t.tenant_id = e.tenant_id and t.model_version = e.model_version and t.from_state = e.channel), 0)::bigint,
         e.removal_effect_num, e.removal_effect_den,
         div(e.removal_effect_num * 2000000 + e.removal_effect_den, 2 * e.removal_effect_den) * 0.000001,
         sh.num, sh.den,
         div(sh.num * 2000000 + sh.den, 2 * sh.den) * 0.000001,
         v_trained.p_conversion_num, v_trained.p_conversion_den,
         div(v_trained.p_conversion_num * 2000000 + v_trained.p_conversion_den, 2 * v_trained.p_conversion_den) * 0.000001
    from apportion.markov_removal_effects e
   cross join lateral (
     select sum(x.weight) as total from apportion.markov_removal_effects x
      where x.tenant_id = e.tenant_id and x.model_version = e.model_version
   ) tot
   cross join lateral (
     select case when tot.total = 0 then 0 else div(e.weight, gcd(e.weight, tot.total)) end as num,
            case when tot.total = 0 then 1 else div(tot.total, gcd(e.weight, tot.total)) end as den
   ) sh
   where e.tenant_id = v_trained.tenant_id and e.model_version = p_model_version
   order by e.channel collate "C";
end
$$;
grant execute on function apportion.markov_summary(text) to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
comment on function apportion.markov_summary(text) is
  'The current tenant''s trained markov version per channel: transitions in and out, the removal effect and its share of their sum as exact fractions and rounded (half up, 6 places), and P(conversion). Errors: 42501 when no tenant is set; 22023 when the version is not registered; 55000 when it is not trained.';

-- Trained state never changes.
create or replace function apportion_internal.forbid_trained_change()
returns trigger
language plpgsql
as $$
begin
  raise exception 'trained state of model version % is immutable: register a new version to train again', old.model_version
    using errcode = '23514';
end
$$;

create or replace trigger trained_models_immutable
  before update or delete on apportion.trained_models
  for each row execute function apportion_internal.forbid_trained_change();
create or replace trigger markov_transitions_immutable
  before update or delete on apportion.markov_transitions
  for each row execute function apportion_internal.forbid_trained_change();
create or replace trigger markov_removal_effects_immutable
  before update or delete on apportion.markov_removal_effects
  for each row execute function apportion_internal.forbid_trained_change();

-- Tables -----------------------------------------------------------------------

alter table apportion.trained_models alter column tenant_id set default apportion.current_tenant_id();
alter table apportion.markov_transitions alter column tenant_id set default apportion.current_tenant_id();
alter table apportion.markov_removal_effects alter column tenant_id set default apportion.current_tenant_id();
select apportion_internal.define_tenant_policies('apportion.trained_models');
select apportion_internal.define_tenant_policies('apportion.markov_transitions');
select apportion_internal.define_tenant_policies('apportion.markov_removal_effects');

grant select on apportion.trained_models, apportion.markov_transitions, apportion.markov_removal_effects
  to apportion_ingest, apportion_worker, apportion_reader, apportion_allocator;
grant insert on apportion.trained_models, apportion.markov_transitions, apportion.markov_removal_effects
  to apportion_worker, apportion_allocator;

comment on table apportion.trained_models is
  'Each tenant''s trained markov versions (train_model), frozen: never updated or deleted (23514).';
comment on column apportion.trained_models.tenant_id is 'The tenant (defaults to the current one).';
comment on column apportion.trained_models.model_version is 'The markov version trained.';
comment on column apportion.trained_models.path_count is 'The training paths.';
comment on column apportion.trained_models.conversion_count is 'The training paths that converted.';
comment on column apportion.trained_models.p_conversion_num is 'P(conversion) in lowest terms: numerator.';
comment on column apportion.trained_models.p_conversion_den is 'P(conversion) in lowest terms: denominator.';
comment on column apportion.trained_models.trained_at is 'When it was trained.';
comment on column apportion.trained_models.correlation_id is 'The correlation id of the training''s transaction.';

comment on table apportion.markov_transitions is
  'The transition counts each trained markov version was trained on, frozen like trained_models.';
comment on column apportion.markov_transitions.tenant_id is 'The tenant (defaults to the current one).';
comment on column apportion.markov_transitions.model_version is 'The markov version.';
comment on column apportion.markov_transitions.from_state is 'A channel code, or (start).';
comment on column apportion.markov_transitions.to_state is 'A channel code, (conversion) or (null).';
comment on column apportion.markov_transitions.transition_count is 'How many times the training paths make this transition.';

comment on table apportion.markov_removal_effects is
  'Each trained markov version''s channels with their removal effects, frozen like trained_models; allocation weighs an event''s channels by them.';
comment on column apportion.markov_removal_effects.tenant_id is 'The tenant (defaults to the current one).';
comment on column apportion.markov_removal_effects.model_version is 'The markov version.';
comment on column apportion.markov_removal_effects.channel is 'A channel of the training paths.';
comment on column apportion.markov_removal_effects.removal_effect_num is 'The removal effect in lowest terms: numerator.';
comment on column apportion.markov_removal_effects.removal_effect_den is 'The removal effect in lowest terms: denominator.';
comment on column apportion.markov_removal_effects.weight is
  'The removal effect times the version''s common denominator, an integer: an event''s exact shares are weight / sum(weight) over its channels.';
