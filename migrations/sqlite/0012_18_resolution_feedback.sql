-- Issue 18a: a case's resolution path (upgrade, workaround, new_bug, advice,
-- no_fault_found; NULL while none is recorded), the customer's comment with the
-- rating, and when the closure mail asked for feedback (asked once per case).
ALTER TABLE cases ADD COLUMN resolution TEXT;
ALTER TABLE cases ADD COLUMN feedback_comment TEXT;
ALTER TABLE cases ADD COLUMN feedback_asked_at INTEGER;
