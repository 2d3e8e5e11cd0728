-- The HTTP API (`dunning api`): bearer tokens and idempotency keys.
--
-- A token is a random 32-byte urlsafe string shown once by `dunning token create`;
-- only its SHA-256 (hex) is stored, so a copy of this table lets no one in. The
-- token's name is the actor recorded on every action taken with it (`operator` of
-- an operator action, `source` of a payment); a revoked token stays for the record.
CREATE TABLE api_tokens (
    id          bigserial   PRIMARY KEY,
    token_hash  text        NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    role        text        NOT NULL
                CHECK (role IN ('service', 'operator', 'supervisor', 'auditor')),
    name        text        NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE INDEX api_tokens_name ON api_tokens (name);

-- One row per (principal, Idempotency-Key) of a POST: the request's fingerprint
-- (SHA-256 of method, path and body) and the response it got. A retry with the same
-- key and body gets the stored response again; a different body under the same key
-- is refused. `status_code` is NULL while the first request is still running.
CREATE TABLE api_idempotency (
    principal      text        NOT NULL,
    key            text        NOT NULL,
    method         text        NOT NULL,
    path           text        NOT NULL,
    request_hash   text        NOT NULL CHECK (request_hash ~ '^[0-9a-f]{64}$'),
    status_code    integer,
    content_type   text,
    response_body  bytea,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, key)
);
