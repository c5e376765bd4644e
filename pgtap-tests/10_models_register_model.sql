-- register_model: every invalid definition is refused with 22023 and a
-- message naming the field and the rule, and nothing is stored; the same
-- definition again is a no-op, a different one under a used version is an
-- error; a registered model version never changes, not even for the admin.
-- Registration runs as the admin role (apportion_owner).
begin;
\ir lib/fixtures.sql
select plan(34);

select apportion_test.as_role('apportion_owner') \g /dev/null
select apportion.register_model('reg-linear', 'linear') \g /dev/null

-- Validation: 22023, the field named ------------------------------------------
select throws_ok($$select apportion.register_model('bad-1', 'shapley')$$,
  '22023', 'model kind ''shapley'' is unknown; known kinds: last_touch, last_non_direct, first_touch, linear, time_decay, position_based, fixed_split, markov',
  'unknown kind');

-- markov: a training window [training_start, training_end), both required.
select throws_ok($$select apportion.register_model('bad-mk-1', 'markov')$$,
  '22023', 'model params: training_start is required, an ISO-8601 timestamp like "2025-06-01T00:00:00Z"',
  'markov without a training window');
select throws_ok($$select apportion.register_model('bad-mk-2', 'markov', '{"training_start": "2025-06-01T00:00:00Z"}')$$,
  '22023', 'model params: training_end is required, an ISO-8601 timestamp like "2025-06-01T00:00:00Z"',
  'markov without training_end');
select throws_ok($$select apportion.register_model('bad-mk-3', 'markov', '{"training_start": "2025-06-01", "training_end": "2025-06-01T00:00:00Z"}')$$,
  '22023', 'model params: training_end (2025-06-01T00:00:00Z) must be after training_start (2025-06-01)',
  'markov: an empty training window (a date alone is midnight UTC)');
select throws_ok($$select apportion.register_model('bad-mk-4', 'markov', '{"training_start": "infinity", "training_end": "2025-06-01"}')$$,
  '22023', 'model params: training_start must be an ISO-8601 timestamp like "2025-06-01T00:00:00Z" (got "infinity")',
  'markov: a non-finite training_start');
select throws_ok($$select apportion.register_model('bad-mk-5', 'markov', '{"training_start": "2025-01-01", "training_end": "2025-13-01"}')$$,
  '22023', 'model params: training_end must be an ISO-8601 timestamp like "2025-06-01T00:00:00Z" (got "2025-13-01")',
  'markov: an impossible date');
select throws_ok($$select apportion.register_model('bad-mk-6', 'markov', '{"training_start": "2025-01-01", "training_end": "2025-02-01", "half_life": "7 days"}')$$,
  '22023', 'model params: half_life is not a parameter of kind markov (allowed: lookback, fallback_channel, training_start, training_end)',
  'markov: a parameter of another kind');
select throws_ok($$select apportion.register_model('bad-mk-7', 'markov', '{"training_start": "2025-01-01", "training_end": "2025-02-01", "lookback": "11 years"}')$$,
  '22023', 'model params: lookback must be at most 10 years (got "11 years")',
  'markov: lookback bounded like every kind');
select lives_ok($$select apportion.register_model('reg-mk', 'markov', '{"training_start": "2025-01-01T00:00:00+02:00", "training_end": "2025-02-01", "lookback": "14 days", "fallback_channel": "direct"}')$$,
  'markov with an offset, a date, a lookback and a fallback');
set local timezone = 'Asia/Tokyo';
select is(w.training_start = '2024-12-31 22:00:00Z' and w.training_end = '2025-02-01 00:00:00Z', true,
          'markov: the training window is an instant, a date alone midnight UTC, whatever the session time zone')
  from apportion.attribution_models m, apportion.markov_training_window(m.params) w where m.model_version = 'reg-mk';
reset timezone;
select throws_ok($$select apportion.register_model('bad-2', 'linear', '{"half_life": "7 days"}')$$,
  '22023', 'model params: half_life is not a parameter of kind linear (allowed: lookback, fallback_channel)',
  'a parameter of another kind');
select throws_ok($$select apportion.register_model('bad-3', 'position_based', '{"first": -0.1}')$$,
  '22023', 'model params: first must be a number between 0 and 1 (got -0.1)', 'negative share');
select throws_ok($$select apportion.register_model('bad-4', 'position_based', '{"first": 0.6, "last": 0.5}')$$,
  '22023', 'model params: first + last must not exceed 1 (got 0.6 + 0.5 = 1.1)', 'first + last > 1');
select throws_ok($$select apportion.register_model('bad-5', 'time_decay', '{"half_life": "0 days"}')$$,
  '22023', 'model params: half_life must be positive (got "0 days")', 'zero half_life');
select throws_ok($$select apportion.register_model('bad-6', 'time_decay', '{"half_life": "-1 day"}')$$,
  '22023', 'model params: half_life must be positive (got "-1 day")', 'negative half_life');
select throws_ok($$select apportion.register_model('bad-7', 'linear', '{"lookback": "soon"}')$$,
  '22023', 'model params: lookback must be an interval as text, like "30 days" (got "soon")',
  'lookback that is no interval');
select throws_ok($$select apportion.register_model('bad-7b', 'linear', '{"lookback": "10000 years"}')$$,
  '22023', 'model params: lookback must be at most 10 years (got "10000 years")',
  'a lookback of 10000 years (every allocation would fail with 22008) refused');
select throws_ok($$select apportion.register_model('bad-7c', 'time_decay', '{"half_life": "10 years 1 day"}')$$,
  '22023', 'model params: half_life must be at most 10 years (got "10 years 1 day")', 'a half_life past 10 years refused');
select lives_ok($$select apportion.register_model('bound-7d', 'linear', '{"lookback": "10 years"}')$$,
  'twin: a lookback of exactly 10 years is accepted');
select throws_ok($$select apportion.register_model('bad-8', 'last_touch', '{"fallback_channel": "carrier_pigeon"}')$$,
  '22023', 'register_model: unknown channel(s) carrier_pigeon: not in the default taxonomy nor any tenant''s',
  'unknown fallback channel');
select throws_ok($$select apportion.register_model('bad-9', 'fixed_split', '{"channels": []}')$$,
  '22023', 'model params: fixed_split needs channels, a non-empty array of channel codes', 'empty channel list');
select throws_ok($$select apportion.register_model('bad-10', 'fixed_split', '{"channels": ["email", "telepathy"]}')$$,
  '22023', 'register_model: unknown channel(s) telepathy: not in the default taxonomy nor any tenant''s',
  'unknown channel in the list');
select throws_ok($$select apportion.register_model('bad-11', 'fixed_split', '{"channels": ["email", "email"]}')$$,
  '22023', 'model params: channels must not repeat a channel (got ["email", "email"])', 'repeated channel');
select throws_ok($$select apportion.register_model('bad-12', 'fixed_split', '{"channels": ["email", "display"], "weights": [1]}')$$,
  '22023', 'model params: weights must be an array with one number per channel (2 channels, got [1])',
  'weights of the wrong length');
select throws_ok($$select apportion.register_model('bad-13', 'fixed_split', '{"channels": ["email", "display"], "weights": [1.5, -0.5]}')$$,
  '22023', 'model params: weights must be non-negative numbers (got [1.5, -0.5])', 'negative weight');
select throws_ok($$select apportion.register_model('bad-14', 'fixed_split', '{"channels": ["email", "display"], "weights": [0.5, 0.4]}')$$,
  '22023', 'model params: weights must sum to exactly 1 (got [0.5, 0.4], sum 0.9)', 'weights not summing to 1');
select throws_ok($$select apportion.register_model('bad version!', 'linear')$$,
  '22023', 'register_model: model_version must be 1-64 characters of letters, digits and ._+- starting with a letter or digit (got ''bad version!'')',
  'a model version with illegal characters');
select is((select count(*) from apportion.attribution_models where model_version like 'bad%'), 0::bigint,
  'no invalid model was stored');
select lives_ok($$select apportion.register_model('reg-split', 'fixed_split', '{"channels": ["email", "direct"], "weights": [0.25, 0.75]}')$$,
  'twin: a valid fixed_split with weights registers');

-- Registering again ----------------------------------------------------------------
select lives_ok($$select apportion.register_model('reg-linear', 'linear')$$,
  'registering the same definition again is a no-op');
select throws_ok($$select apportion.register_model('reg-linear', 'linear', '{"lookback": "7 days"}')$$,
  '23505', 'register_model: model version reg-linear is already registered as linear {}; a model version is immutable, register a new version instead',
  'a different definition under a used version is an error');

-- Immutability ------------------------------------------------------------------
select throws_ok($$update apportion.attribution_models set kind = 'first_touch' where model_version = 'reg-linear'$$,
  '23514', 'model version reg-linear is immutable: register a new version instead of changing it',
  'even the admin cannot change a model''s kind');
select throws_ok($$update apportion.attribution_models set params = '{"lookback": "1 day"}' where model_version = 'reg-linear'$$,
  '23514', 'model version reg-linear is immutable: register a new version instead of changing it',
  'even the admin cannot change a model''s params');
select apportion_test.as_admin() \g /dev/null

select apportion_test.as_role('apportion_worker') \g /dev/null
select throws_ok($$update apportion.attribution_models set params = '{"lookback": "1 day"}' where model_version = 'reg-linear'$$,
  '42501', 'permission denied for table attribution_models', 'the worker cannot update a model at all');
select apportion_test.as_admin() \g /dev/null

select * from finish();
rollback;
