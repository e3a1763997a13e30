ALTER TABLE "runledger"."job_queue" DROP CONSTRAINT "job_queue_job_type_job_definitions_job_type_fk";
--> statement-breakpoint
-- What the dropped foreign key guaranteed, checked on the rare side: deleting or renaming a job
-- type that jobs still use fails (SQLSTATE 23001, `db.related_resource_still_referenced`). Enqueue share-locks
-- the definitions it inserts against, so it waits for such a delete and then refuses the type.
-- The check scans job_queue (no index on job_type): fine for an administrative delete.
CREATE FUNCTION "runledger"."refuse_job_type_in_use"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (TG_OP = 'DELETE' OR NEW.job_type IS DISTINCT FROM OLD.job_type)
    AND EXISTS (SELECT 1 FROM "runledger"."job_queue" WHERE job_type = OLD.job_type) THEN
    RAISE EXCEPTION 'job type % is still used by jobs', OLD.job_type
      USING ERRCODE = 'restrict_violation', CONSTRAINT = 'job_queue_job_type_in_use';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "trg_job_definitions_in_use" BEFORE DELETE OR UPDATE OF "job_type" ON "runledger"."job_definitions"
  FOR EACH ROW EXECUTE FUNCTION "runledger"."refuse_job_type_in_use"();
