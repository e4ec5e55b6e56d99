-- Tables of the example functions (functions/examples/*.c).  Idempotent: run it before
-- the first invocation, e.g.  psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f schema.sql
-- Times are timestamptz; the nightly report cuts days in UTC.

-- url_shortener: POST creates a code, GET /fn/url_shortener/<code> redirects and logs a hit.
CREATE TABLE IF NOT EXISTS short_urls (
    code        text PRIMARY KEY CHECK (code ~ '^[A-Za-z0-9]{1,32}$'),
    url         text NOT NULL CHECK (length(url) <= 2048),
    hits        bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_hit_at timestamptz
);
CREATE INDEX IF NOT EXISTS short_urls_created_at ON short_urls (created_at);

CREATE TABLE IF NOT EXISTS url_hits (
    id     bigserial PRIMARY KEY,
    code   text NOT NULL REFERENCES short_urls (code) ON DELETE CASCADE,
    hit_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS url_hits_hit_at ON url_hits (hit_at);

-- upload_meta: one row per stored object, with the image dimensions read from its header.
CREATE TABLE IF NOT EXISTS uploads (
    id         bigserial PRIMARY KEY,
    bucket     text NOT NULL,
    key        text NOT NULL,
    size_bytes bigint CHECK (size_bytes >= 0),
    format     text NOT NULL CHECK (format IN ('png', 'jpeg', 'gif')),
    width      integer NOT NULL CHECK (width > 0),
    height     integer NOT NULL CHECK (height > 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (bucket, key)
);
CREATE INDEX IF NOT EXISTS uploads_created_at ON uploads (created_at);

-- queue_worker: one row per processed message; message_id makes redelivery harmless.
CREATE TABLE IF NOT EXISTS jobs (
    id           bigserial PRIMARY KEY,
    message_id   text NOT NULL UNIQUE,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS jobs_processed_at ON jobs (processed_at);

-- nightly_report: one row per day, recomputed when the report runs again.
CREATE TABLE IF NOT EXISTS daily_reports (
    day            date PRIMARY KEY,
    urls_created   bigint NOT NULL,
    url_hits       bigint NOT NULL,
    top_code       text,
    top_code_hits  bigint NOT NULL,
    uploads        bigint NOT NULL,
    upload_bytes   bigint NOT NULL,
    upload_formats jsonb NOT NULL,
    jobs_done      bigint NOT NULL,
    jobs_by_kind   jsonb NOT NULL,
    generated_at   timestamptz NOT NULL
);
