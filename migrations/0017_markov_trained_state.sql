-- Up Migration
-- Kind markov: a tenant's trained state of a data-driven model version,
-- frozen when it is trained (db/15_markov.sql). One row per trained
-- (tenant, version), its transition counts and its channels' removal
-- effects as exact fractions. Nothing here is ever updated: retraining
-- means registering a new version.
set local role apportion_owner;

alter table apportion.attribution_models drop constraint attribution_models_kind_known;
alter table apportion.attribution_models add constraint attribution_models_kind_known check (kind in (
  'last_touch', 'last_non_direct', 'first_touch', 'linear', 'time_decay', 'position_based', 'fixed_split', 'markov'));

create table apportion.trained_models (
  tenant_id uuid not null references apportion.tenants (id),
  model_version text not null references apportion.attribution_models (model_version),
  path_count bigint not null constraint trained_models_path_count_positive check (path_count > 0),
  conversion_count bigint not null
    constraint trained_models_conversion_count_in_range check (conversion_count between 0 and path_count),
  -- P(conversion) from the start state, in lowest terms.
  p_conversion_num numeric not null,
  p_conversion_den numeric not null constraint trained_models_p_conversion_den_positive check (p_conversion_den > 0),
  trained_at timestamptz not null default now(),
  correlation_id uuid,
  primary key (tenant_id, model_version)
);
alter table apportion.trained_models enable row level security;
alter table apportion.trained_models force row level security;

-- States: channel codes, and '(start)', '(conversion)', '(null)' (no channel
-- code can start with a parenthesis).
create table apportion.markov_transitions (
  tenant_id uuid not null,
  model_version text not null,
  from_state text not null,
  to_state text not null,
  transition_count bigint not null constraint markov_transitions_count_positive check (transition_count > 0),
  primary key (tenant_id, model_version, from_state, to_state),
  foreign key (tenant_id, model_version) references apportion.trained_models (tenant_id, model_version)
);
alter table apportion.markov_transitions enable row level security;
alter table apportion.markov_transitions force row level security;

-- Removal effect RE_c = removal_effect_num / removal_effect_den in lowest
-- terms, and weight = RE_c times the least common multiple of the
-- version's denominators: an integer, so an event's exact shares are
-- weight_c / sum(weight) over its channels.
create table apportion.markov_removal_effects (
  tenant_id uuid not null,
  model_version text not null,
  channel text not null,
  removal_effect_num numeric not null constraint markov_removal_effects_num_non_negative check (removal_effect_num >= 0),
  removal_effect_den numeric not null constraint markov_removal_effects_den_positive check (removal_effect_den > 0),
  weight numeric not null constraint markov_removal_effects_weight_integer check (weight >= 0 and weight = trunc(weight)),
  primary key (tenant_id, model_version, channel),
  foreign key (tenant_id, model_version) references apportion.trained_models (tenant_id, model_version)
);
alter table apportion.markov_removal_effects enable row level security;
alter table apportion.markov_removal_effects force row level security;

-- The registry row names its handler, which must exist for the dispatcher
-- to be generated; db/ gives it its body.
create function apportion.task_train_model(p_payload jsonb) returns jsonb language sql as 'select null::jsonb';
insert into apportion.queue_tasks (queue, task, handler, tenant_scope, max_attempts, description) values
  ('attribution', 'train_model', 'apportion.task_train_model', 'tenant', 3,
   'Train a data-driven model version (kind markov) for the tenant. Payload {"model_version"}.');

reset role;
