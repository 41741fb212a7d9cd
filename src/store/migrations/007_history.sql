-- History the user controls: DELETE /v1/generations/{id} hides a finished generation at once
-- (deleted_at) and removes its images; the retention sweep (src/gateway/retention.ts) later purges
-- hidden rows, and with RETENTION_DAYS the generations finished longer ago than that.
ALTER TABLE generations ADD COLUMN deleted_at timestamptz;

-- The sweep's two reads: hidden rows by when they were hidden, finished ones by when they finished.
CREATE INDEX generations_deleted ON generations (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX generations_finished ON generations (finished_at) WHERE finished_at IS NOT NULL;

-- One gateway instance sweeps at a time: it takes the lease (a row, so it holds no connection
-- while it deletes images) and gives it back when done; a lease of an instance that died runs out.
CREATE TABLE sweep_leases (
  name        text PRIMARY KEY,
  lease_until timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO sweep_leases (name) VALUES ('retention');
