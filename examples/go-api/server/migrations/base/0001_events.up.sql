-- events: what the API serves (all releases).
CREATE TABLE events (
    id         bigserial   PRIMARY KEY,
    title      text        NOT NULL,
    starts_at  timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_events_starts_at ON events (starts_at);
