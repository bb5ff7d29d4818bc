-- The legacy billing database as this application assumes it (read-only in production).
-- Portable SQL: PostgreSQL in production and tests, SQLite for the embedded demo.
-- Money is stored by the legacy system in major units (dollars, NUMERIC(12,2)); this
-- application converts to integer minor units in one place (LegacyInvoice.total_minor, ...).
-- Usage rates are dollars per 1,000 impressions (NUMERIC(14,6)).

CREATE TABLE IF NOT EXISTS account (
    acct_id INTEGER PRIMARY KEY,
    acct_name VARCHAR(200) NOT NULL,
    billing_email VARCHAR(254) NOT NULL DEFAULT '',
    billing_address VARCHAR(1000) NOT NULL DEFAULT '',
    payment_customer_id VARCHAR(255),
    status VARCHAR(16) NOT NULL DEFAULT 'active',
    created TIMESTAMP NOT NULL
);

-- One row per legacy invoice. service_month is the first day of the month billed.
CREATE TABLE IF NOT EXISTS billing_invoice (
    inv_uuid VARCHAR(36) PRIMARY KEY,
    acct_id INTEGER NOT NULL REFERENCES account (acct_id),
    payment_customer_id VARCHAR(255),
    stripe_invoice_id VARCHAR(255),
    service_month DATE NOT NULL,
    total NUMERIC(12, 2) NOT NULL,
    currency VARCHAR(3) NOT NULL DEFAULT 'usd',
    status VARCHAR(16) NOT NULL CHECK (status IN ('paid', 'unpaid', 'failed')),
    created TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_invoice_acct_month ON billing_invoice (acct_id, service_month);
CREATE INDEX IF NOT EXISTS billing_invoice_month ON billing_invoice (service_month);

-- line_kind: flat, ST, RM, CV, managed, other; discount and credit_note (negative amounts). quantity is impressions for ST/RM/CV, 1 else.
CREATE TABLE IF NOT EXISTS billing_invoice_line (
    line_id INTEGER PRIMARY KEY,
    inv_uuid VARCHAR(36) NOT NULL REFERENCES billing_invoice (inv_uuid),
    line_kind VARCHAR(16) NOT NULL,
    description VARCHAR(255) NOT NULL DEFAULT '',
    quantity BIGINT NOT NULL DEFAULT 1,
    rate NUMERIC(14, 6) NOT NULL DEFAULT 0,
    amount NUMERIC(12, 2) NOT NULL
);
CREATE INDEX IF NOT EXISTS billing_invoice_line_inv ON billing_invoice_line (inv_uuid);

-- Flat monthly subscription fee per account.
CREATE TABLE IF NOT EXISTS account_plan_sub (
    sub_id INTEGER PRIMARY KEY,
    acct_id INTEGER NOT NULL REFERENCES account (acct_id),
    sub_name VARCHAR(200) NOT NULL,
    sub_invoice_line VARCHAR(255) NOT NULL DEFAULT '',
    sub_rate NUMERIC(12, 2) NOT NULL
);

-- Impression tiers per account and usage type. usage_max is the tier's exclusive ceiling
-- (the tier where actual < usage_max applies to all units); NULL means no ceiling.
CREATE TABLE IF NOT EXISTS account_plan_usage (
    usage_id INTEGER PRIMARY KEY,
    acct_id INTEGER NOT NULL REFERENCES account (acct_id),
    usage_type VARCHAR(2) NOT NULL CHECK (usage_type IN ('ST', 'RM', 'CV')),
    usage_max BIGINT,
    usage_rate NUMERIC(14, 6) NOT NULL
);

-- Managed-service jobs: a flat amount per job, billed in its service month.
CREATE TABLE IF NOT EXISTS managed_service_job (
    job_id INTEGER PRIMARY KEY,
    acct_id INTEGER NOT NULL REFERENCES account (acct_id),
    job_name VARCHAR(200) NOT NULL,
    service_month DATE NOT NULL,
    amount NUMERIC(12, 2) NOT NULL,
    created TIMESTAMP NOT NULL
);
