-- Up Migration
-- time_decay weights from the exact exponent: 2^-(dt / half_life) with dt
-- and the half-life in whole microseconds, dt = q * half_life + r, is
-- 2^-q times the product of 2^-(d_k * 1000^k / half_life) over the base-1000
-- digits d_k of r. Those factors depend on the half-life, so they are kept
-- per half-life: computed once when a model with that half-life is
-- registered (db/10_models.sql), read by every allocation. The old table
-- factored an exponent rounded to 12 decimal places, which moved a share
-- of 10^12 cents by up to a cent.
-- Global constants of the registered models, not tenant data: no tenant_id,
-- no RLS.
set local role apportion_owner;

create table apportion.half_life_factors (
  half_life_us bigint not null constraint half_life_factors_half_life_positive check (half_life_us > 0),
  -- 0..4: 2^-(digits * 1000^part / half_life); 5: 2^-digits, whole half-lives.
  part smallint not null constraint half_life_factors_part_range check (part between 0 and 5),
  digits integer not null constraint half_life_factors_digits_range check (digits between 0 and 999),
  factor numeric not null,
  primary key (half_life_us, part, digits)
);
revoke all on apportion.half_life_factors from public;

drop table apportion.decay_factors;

reset role;
