-- Several mailboxes (issue 15): the support address of the mailbox a case was opened
-- from. Its customer mail goes out from that address; NULL (cases opened before, or by
-- `casegate ingest`) means `gateway.support_address`.
ALTER TABLE cases ADD COLUMN support_address TEXT;
