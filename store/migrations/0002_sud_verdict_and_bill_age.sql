-- What the saga learns since the first schema (issue "Money safety"):
-- SUD's verdict on the paid action, when the order reached SUD (its
-- execute timeout counts from then), when the current bill was first
-- used (bills live 48 hours), and whether an earlier attempt of the
-- current pay ended without an answer (a later decline is then checked
-- with a cancel); and the gifted part of the baseline balance, so that a
-- gift received while a Midas debit is confirmed does not hide the debit.
-- Existing rows read as "not known yet".
ALTER TABLE orders ADD COLUMN sud_status   TEXT    NOT NULL DEFAULT '';
ALTER TABLE orders ADD COLUMN ordered_at   INTEGER;
ALTER TABLE orders ADD COLUMN first_pay_at INTEGER;
ALTER TABLE orders ADD COLUMN pay_unknown  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN baseline_gen_balance INTEGER NOT NULL DEFAULT 0;
