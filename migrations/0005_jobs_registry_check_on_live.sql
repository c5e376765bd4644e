-- Up Migration
-- The registry foreign key moves from apportion.jobs to its jobs_live
-- partition. Every job enters the queue through jobs_live, so every new job
-- is still checked; a job moving to jobs_done when it finishes (a delete
-- plus an insert) no longer re-checks keys that cannot have changed.
set local role apportion_owner;

alter table apportion.jobs drop constraint jobs_task_registered;
alter table apportion.jobs_live add constraint jobs_task_registered
  foreign key (queue, task) references apportion.queue_tasks (queue, task);

reset role;
