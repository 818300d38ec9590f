-- Backup accounts of an organization: members of one of its security groups whose
-- passwords are sealed under the server key (AEAD, bound to organization and login).
-- The list is replaced as a whole by PUT .../BackupAccounts; `position` keeps its order.
CREATE TABLE backup_accounts (
    organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    login_key        TEXT NOT NULL,   -- lower-case login: one account per login
    login            TEXT NOT NULL,
    name             TEXT NOT NULL,
    group_id         TEXT NOT NULL,   -- composite id of the security group
    is_cloud         BOOLEAN NOT NULL,
    sealed_password  BYTEA NOT NULL,
    position         INTEGER NOT NULL,
    PRIMARY KEY (organization_id, login_key)
);
