"""Seed a casegate SQLite store with N realistic existing cases, fast (python sqlite3,
one transaction), in the schema the casegate binary created (run `casegate cases list`
on the empty database first so its migrations are applied).

The rows have the shape a real `run --once` writes (checked against one): per case a
`cases` row, its participant, the customer's mail (`messages`, direction in, raw kept),
the acknowledgement (`messages` direction out + a sent `outbox` row with its raw mail),
`case_opened` and `triaged` events, and an SLA clock. Every second case also has a
customer update and an engineer reply (two more messages, one more sent outbox row, two
events). Most cases are closed (clock met); 10 % are open with a running first-response
clock whose warning is in the future (so the SLA timer has nothing due unless
`make_due` says so). One message in ten has a 20 KiB attachment (not 1 MiB: 200,000
cases with 1 MiB attachments would be a 20 GB store; the drain under test still uses
1 MiB attachments). Timestamps are spread over the past year, so the one-hour
rate-limit windows of new mail see none of them.

    seed.py DB N [--run NAME]      -> prints one JSON line with row counts and seconds
"""

import json
import random
import sqlite3
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from benchlib import N_DOMAINS, en_domain, ja_domain, EN_COUNTRIES  # noqa: E402

DAY_MS = 86_400_000
QUEUES_EN = {"US": ("ansible-na", "NA", "America/New_York"), "CA": ("ansible-na", "NA", "America/Toronto"),
             "DE": ("ansible-emea", "EMEA", "Europe/Berlin"), "GB": ("ansible-emea", "EMEA", "Europe/London"),
             "AU": ("ansible-apac", "APAC", "Australia/Sydney"), "SG": ("ansible-apac", "APAC", "Asia/Singapore")}


def raw_in(sender, mid, subject, i):
    body = ("Hello,\r\n\r\nsince this morning the nightly playbook fails at the inventory sync step on "
            f"host web{i}.\r\nWe did not change the inventory. The job log says:\r\n\r\n"
            "  ERROR! Unexpected Exception, this is probably a bug: 'NoneType' object has no attribute 'get'\r\n"
            "  the full traceback was: ... ansible-playbook 2.16.3\r\n\r\n"
            "Could you please help us find the cause? Production deploys are blocked.\r\n\r\nBest regards,\r\n"
            f"Ops {i}\r\n")
    head = (f"Return-Path: <{sender}>\r\nDelivered-To: support\r\nReceived: from mx.example.net by imap.example.com "
            f"with LMTP id x{i}; Mon, 01 Jun 2026 10:00:00 +0000\r\nFrom: Ops {i} <{sender}>\r\n"
            f"To: support@example.com\r\nSubject: {subject}\r\nDate: Mon, 01 Jun 2026 10:00:00 +0000\r\n"
            f"Message-ID: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
    return (head + body).encode(), body.replace("\r\n", "\n")


def raw_out(sender, mid, in_mid, subject, case, text):
    head = (f"From: Example Support <support@example.com>\r\nTo: {sender}\r\n"
            f"Subject: Re: [Case #{case:08d}] {subject}\r\nDate: Mon, 01 Jun 2026 10:00:01 +0000\r\n"
            f"Message-ID: <{mid}>\r\nIn-Reply-To: <{in_mid}>\r\nReferences: <{in_mid}>\r\n"
            "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
    return (head + text.replace("\n", "\r\n")).encode()


ACK_TEXT = ("Hello Ops {i},\n\nThank you for contacting Example Support. We have opened case {case:08d} for your "
            "request \"{subject}\".\n\nProduct: ansible\nSeverity: 3\nFirst response due: 2026-06-02 10:00 (UTC)\n\n"
            "To help us pin the problem down, please send:\n- the output of ansible --version\n- the playbook and "
            "inventory (redacted)\n- the full job output with -vvv\n\nPlease keep [Case #{case:08d}] in the subject "
            "of your replies.\n\nBest regards,\nExample Support\n")


def seed(db, n, run="seed", start_id=None):
    t0 = time.monotonic()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA foreign_keys = OFF")
    rnd = random.Random(42)
    now_ms = int(time.time() * 1000)
    first = start_id or (conn.execute("SELECT COALESCE(MAX(id), 0) FROM cases").fetchone()[0] + 1)
    msg_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0] + 1
    out_id = conn.execute("SELECT COALESCE(MAX(id), 0) FROM outbox").fetchone()[0] + 1
    att_blob = bytes(rnd.getrandbits(8) for _ in range(20 * 1024))
    cases, parts, msgs, atts, events, outbox, clocks = [], [], [], [], [], [], []
    counts = dict(cases=0, messages=0, attachments=0, events=0, outbox=0, sla_clocks=0, case_participants=0)

    def flush():
        conn.executemany(
            "INSERT INTO cases (id, subject, status, queue, product, language, region, severity, owner, customer, "
            "customer_name, account, entitlement, related_case, created_at, updated_at, closed_at, first_response_due, "
            "first_response_at, next_response_due, breached, tier, country, contract_id, language_confidence, time_zone) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", cases)
        conn.executemany("INSERT INTO case_participants (case_id, email) VALUES (?,?)", parts)
        conn.executemany(
            "INSERT INTO messages (id, case_id, direction, role, dedup_key, message_id, from_addr, from_name, to_addrs, "
            "cc_addrs, subject, received_at, text, html_only, size, raw) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", msgs)
        conn.executemany("INSERT INTO attachments (message_row, filename, content_type, size, content) VALUES (?,?,?,?,?)",
                         atts)
        conn.executemany("INSERT INTO events (case_id, at, actor, kind, detail) VALUES (?,?,?,?,?)", events)
        conn.executemany(
            "INSERT INTO outbox (id, case_id, kind, message_id, sender, recipients, raw, status, attempts, "
            "next_attempt_at, created_at, sent_at, last_error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", outbox)
        conn.executemany(
            "INSERT INTO sla_clocks (case_id, kind, started_at, due_at, warn_at, state, met_at, warned_at, breached_at, "
            "next_check_at) VALUES (?,?,?,?,?,?,?,?,?,?)", clocks)
        for k, rows in (("cases", cases), ("case_participants", parts), ("messages", msgs), ("attachments", atts),
                        ("events", events), ("outbox", outbox), ("sla_clocks", clocks)):
            counts[k] += len(rows)
            rows.clear()

    conn.execute("BEGIN")
    for j in range(n):
        case = first + j
        i = j
        ja = i % 2 == 1
        k = (i // 2) % N_DOMAINS
        domain = ja_domain(k) if ja else en_domain(k)
        sender = f"s{run}-{i}@{domain}"
        country = "JP" if ja else EN_COUNTRIES[k % len(EN_COUNTRIES)]
        if ja:
            queue, region, tz = "ansible-ja", "APAC", "Asia/Tokyo"
        else:
            queue, region, tz = QUEUES_EN[country]
        tier = "premium" if k % 3 == 0 else "standard"
        created = now_ms - 2 * DAY_MS - int((n - j) / max(n, 1) * 360 * DAY_MS)
        open_case = j % 10 == 0
        status = "open" if open_case else "closed"
        closed_at = None if open_case else created + 3 * DAY_MS
        subject = f"Playbook fails on host {i}"
        due = created + DAY_MS
        cases.append((case, subject, status, queue, "ansible", "ja" if ja else "en", region, 3,
                      None if open_case else f"eng{k % 20}@example.com", sender, f"Ops {i}", f"Account {k}", "entitled",
                      None, created, closed_at or created + 1000, closed_at, due,
                      None if open_case else created + 3_600_000, None, 0, tier, country,
                      f"B-{'JA' if ja else 'EN'}-{k:03d}", 1.0, tz))
        parts.append((case, sender))
        in_mid = f"{run}-{i}@{domain}"
        raw, text = raw_in(sender, in_mid, subject, i)
        msgs.append((msg_id, case, "in", "customer", f"mid:{in_mid}", in_mid, sender, f"Ops {i}",
                     "support@example.com", "", subject, created, text, 0, len(raw), raw))
        if i % 10 == 5:
            atts.append((msg_id, f"sosreport-{i}.tar.xz", "application/octet-stream", len(att_blob), att_blob))
        msg_id += 1
        ack_mid = f"case-{case:08d}.m-1@example.com"
        ack_text = ACK_TEXT.format(i=i, case=case, subject=subject)
        ack_raw = raw_out(sender, ack_mid, in_mid, subject, case, ack_text)
        msgs.append((msg_id, case, "out", "system", f"out:{ack_mid}", ack_mid, "support@example.com", None, sender, "",
                     f"Re: [Case #{case:08d}] {subject}", created + 500, ack_text, 0, len(ack_raw), None))
        msg_id += 1
        outbox.append((out_id, case, "acknowledgement", ack_mid, "support@example.com", json.dumps([sender]), ack_raw,
                       "sent", 1, created + 300_000, created + 500, created + 800, None))
        out_id += 1
        events.append((case, created, sender, "case_opened", json.dumps({"from": sender})))
        events.append((case, created, sender, "triaged", json.dumps({
            "contract": f"B-{'JA' if ja else 'EN'}-{k:03d}", "entitlement": "entitled", "language": "ja" if ja else "en",
            "language_confidence": 1.0, "matched_by": "domain", "product": "ansible", "queue": queue, "region": region})))
        if open_case:
            # A running clock; its warning is in the future (moved by make_due for the SLA test).
            warn = now_ms + (1 + j % 30) * DAY_MS
            clocks.append((case, "first_response", created, warn + 3_600_000, warn, "running", None, None, None, warn))
        else:
            clocks.append((case, "first_response", created, due, due - 3_600_000, "met", created + 3_600_000, None,
                           None, None))
        if j % 2 == 0:
            upd_mid = f"{run}-{i}-r1@{domain}"
            raw2, text2 = raw_in(sender, upd_mid, f"Re: [Case #{case:08d}] {subject}", i)
            msgs.append((msg_id, case, "in", "customer", f"mid:{upd_mid}", upd_mid, sender, f"Ops {i}",
                         "support@example.com", "", f"Re: [Case #{case:08d}] {subject}", created + 7_200_000, text2, 0,
                         len(raw2), raw2))
            msg_id += 1
            eng_mid = f"case-{case:08d}.m-2@example.com"
            eng_text = "Hello,\n\nplease run the playbook with -vvv and send us the output.\n\nRegards,\nEngineer\n" * 3
            eng_raw = raw_out(sender, eng_mid, upd_mid, subject, case, eng_text)
            msgs.append((msg_id, case, "out", "engineer", f"out:{eng_mid}", eng_mid, "support@example.com", None,
                         sender, "", f"Re: [Case #{case:08d}] {subject}", created + 9_000_000, eng_text, 0,
                         len(eng_raw), None))
            msg_id += 1
            outbox.append((out_id, case, "engineer_reply", eng_mid, "support@example.com", json.dumps([sender]),
                           eng_raw, "sent", 1, created + 9_300_000, created + 9_000_000, created + 9_000_400, None))
            out_id += 1
            events.append((case, created + 7_200_000, sender, "customer_update", json.dumps({"joined_by": "reference"})))
            events.append((case, created + 9_000_000, f"eng{k % 20}@example.com", "engineer_reply",
                           json.dumps({"message_id": eng_mid})))
        if len(cases) >= 5000:
            flush()
    flush()
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    counts["seconds"] = round(time.monotonic() - t0, 2)
    return counts


def make_due(db, n_due):
    """Make `n_due` running clocks due for their warning now (warn_at in the past, due in
    the future, not warned yet), the rest stay in the future. Repeatable: the same clocks
    become due again. Returns how many were changed."""
    conn = sqlite3.connect(db)
    now_ms = int(time.time() * 1000)
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM sla_clocks WHERE state = 'running' ORDER BY id LIMIT ?", (n_due,)).fetchall()]
    conn.executemany("UPDATE sla_clocks SET warn_at = ?, next_check_at = ?, due_at = ?, warned_at = NULL WHERE id = ?",
                     [(now_ms - 60_000, now_ms - 60_000, now_ms + 3_600_000, i) for i in ids])
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return len(ids)


if __name__ == "__main__":
    db, n = sys.argv[1], int(sys.argv[2])
    run = sys.argv[sys.argv.index("--run") + 1] if "--run" in sys.argv else "seed"
    print(json.dumps(seed(db, n, run)))
