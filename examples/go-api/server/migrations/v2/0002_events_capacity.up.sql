-- Release v2: events.capacity. Additive, with a default: v1 still inserts and reads.
ALTER TABLE events ADD COLUMN capacity integer NOT NULL DEFAULT 0;
