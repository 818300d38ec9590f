-- Protected users whose count an operator removed (DELETE /v5/LicensedUsers/{id}): such a user
-- counts again once backed up after `revoked_at`. Its backups are untouched.
CREATE TABLE licensing_revocations (
    organization_id  TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    revoked_at       BIGINT NOT NULL,
    PRIMARY KEY (organization_id, user_id)
);
