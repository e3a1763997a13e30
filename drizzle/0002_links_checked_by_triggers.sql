ALTER TABLE "runledger"."job_queue" DROP CONSTRAINT "job_queue_job_type_job_definitions_job_type_fk";
--> statement-breakpoint
ALTER TABLE "runledger"."job_queue" DROP CONSTRAINT "job_queue_workflow_step_id_workflow_steps_id_fk";
--> statement-breakpoint
ALTER TABLE "runledger"."workflow_step_dependencies" DROP CONSTRAINT "fk_workflow_step_dependencies_prerequisite";
--> statement-breakpoint
ALTER TABLE "runledger"."workflow_step_dependencies" DROP CONSTRAINT "fk_workflow_step_dependencies_dependent";
--> statement-breakpoint
ALTER TABLE "runledger"."workflow_steps" DROP CONSTRAINT "workflow_steps_workflow_run_id_workflow_runs_id_fk";
--> statement-breakpoint
ALTER TABLE "runledger"."workflow_steps" DROP CONSTRAINT "workflow_steps_job_type_job_definitions_job_type_fk";
--> statement-breakpoint
ALTER TABLE "runledger"."workflow_steps" DROP CONSTRAINT "workflow_steps_job_id_job_queue_id_fk";
--> statement-breakpoint
-- Only the edges' composite keys needed this; it goes after them.
ALTER TABLE "runledger"."workflow_steps" DROP CONSTRAINT "uq_workflow_steps_run_id";
--> statement-breakpoint
-- A job's type, a step's run and job type, its edges, and the links between a step and its job
-- have no foreign keys (see the schema): these triggers do what their ON DELETE / ON UPDATE
-- actions did. Deleting runs deletes their steps; deleting steps deletes the edges at either end
-- and unlinks their jobs; deleting jobs unlinks their steps; deleting or renaming a definition
-- that jobs or steps use fails. Nothing on the hot path deletes or renames, so they cost nothing there.
CREATE OR REPLACE FUNCTION "runledger"."workflow_runs_deleted"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "runledger"."workflow_steps" s USING deleted_runs d WHERE s.workflow_run_id = d.id;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "trg_workflow_runs_deleted" AFTER DELETE ON "runledger"."workflow_runs"
  REFERENCING OLD TABLE AS deleted_runs FOR EACH STATEMENT EXECUTE FUNCTION "runledger"."workflow_runs_deleted"();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION "runledger"."workflow_steps_deleted"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM "runledger"."workflow_step_dependencies" e
  USING deleted_steps d
  WHERE e.workflow_run_id = d.workflow_run_id AND (e.prerequisite_step_id = d.id OR e.dependent_step_id = d.id);
  UPDATE "runledger"."job_queue" j SET workflow_step_id = NULL
  FROM deleted_steps d
  WHERE j.workflow_step_id = d.id;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "trg_workflow_steps_deleted" AFTER DELETE ON "runledger"."workflow_steps"
  REFERENCING OLD TABLE AS deleted_steps FOR EACH STATEMENT EXECUTE FUNCTION "runledger"."workflow_steps_deleted"();
--> statement-breakpoint
CREATE OR REPLACE FUNCTION "runledger"."job_queue_deleted"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "runledger"."workflow_steps" s SET job_id = NULL
  FROM deleted_jobs d
  WHERE s.job_id = d.id;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "trg_job_queue_deleted" AFTER DELETE ON "runledger"."job_queue"
  REFERENCING OLD TABLE AS deleted_jobs FOR EACH STATEMENT EXECUTE FUNCTION "runledger"."job_queue_deleted"();
--> statement-breakpoint
-- Row triggers here: a statement trigger with transition tables cannot name a column, and this
-- one must not fire on the catalog's routine updates of a definition's settings. Jobs count too:
-- job_queue.job_type lost its foreign key (its per-row check was ~5 of 20 µs of server time per
-- job in a batch enqueue). Enqueue share-locks the definitions it inserts against, so a delete
-- waits for it and then sees its jobs. The checks scan (no index on job_type): fine for an
-- administrative delete or rename.
CREATE OR REPLACE FUNCTION "runledger"."job_definitions_in_use"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM "runledger"."workflow_steps" s WHERE s.job_type = OLD.job_type)
    OR EXISTS (SELECT 1 FROM "runledger"."job_queue" j WHERE j.job_type = OLD.job_type) THEN
    RAISE EXCEPTION 'job definition % is still used by jobs or workflow steps', OLD.job_type
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "trg_job_definitions_deleted" AFTER DELETE ON "runledger"."job_definitions"
  FOR EACH ROW EXECUTE FUNCTION "runledger"."job_definitions_in_use"();
--> statement-breakpoint
CREATE TRIGGER "trg_job_definitions_renamed" AFTER UPDATE OF job_type ON "runledger"."job_definitions"
  FOR EACH ROW WHEN (OLD.job_type IS DISTINCT FROM NEW.job_type)
  EXECUTE FUNCTION "runledger"."job_definitions_in_use"();
