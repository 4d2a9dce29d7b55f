"""casegate's soak run (issue 19): the daemon for a set time under a steady mix of work.

Started by scripts/soak (which builds the binary and starts private servers). Every
`1/rate` seconds one event, drawn with a fixed seed:

  new       a new-case mail from an entitled customer (en/ja; every 10th with a 1 MiB
            attachment), APPENDed to the inbox; its latency is APPEND to acknowledgement
  reply     a customer's reply to their acknowledgement (In-Reply-To its Message-ID)
  engineer  an engineer's reply to a new-case notification, sent to its signed reply
            address, with a command (#take, #severity 2, #internal, #close)
  bounce    a delivery status notification to an acknowledgement's signed return path
SLA warnings and breaches come on their own: the soak's SLA policy gives every case a
few minutes until its first response (24x7), so cases that nobody answers breach.

Every `--sample-secs` the daemon's resident memory (VmRSS) and open files
(/proc/PID/fd) are sampled. At the end one JSON object is printed: the samples, the
least-squares slope of memory and open files per ten minutes after the warm-up, the
latency percentiles per `--window-minutes`, the events sent, the SLA events and
outbound mail in the store, and the correctness checks (every new mail on exactly one
case with one acknowledgement; nothing left in the inbox).
"""

import argparse
import email
import email.policy
import imaplib
import json
import os
import random
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

ENGINEERS = [
    ("sato@example.com", "Sato Hanako", "APAC", ["ansible-ja", "satellite-ja"]),
    ("alex@example.com", "Alex Chen", "NA", ["ansible-na", "ansible-emea", "ansible-apac"]),
    ("maria@example.com", "Maria Schmidt", "EMEA", ["satellite-emea", "satellite-na", "satellite-apac"]),
]
COMMANDS = ["#take", "#severity 2 the service is down for all users", "#internal", "#close"]
MIX = [("new", 55), ("reply", 20), ("engineer", 15), ("bounce", 10)]


def soak_config_extra(sla_minutes):
    lines = ['[staff]', 'reply_key = "soak-reply-key-0123456789abcdef"',
             'default_escalation = "soak-leads@example.com"']
    for addr, name, region, queues in ENGINEERS:
        qs = ", ".join(f'"{q}"' for q in queues)
        lines += ["[[staff.engineers]]", f'address = "{addr}"', f'name = "{name}"',
                  f'region = "{region}"', f"queues = [{qs}]"]
    for tier in ("premium", "standard"):
        lines.append(f"[sla.policies.{tier}]")
        for sev in (1, 2, 3, 4):
            lines.append(f'sev{sev} = {{ initial = "{sla_minutes}m", next = "{sla_minutes}m", clock = "24x7" }}')
    return "\n".join(lines) + "\n"


def sink_mails(sink_dir, rcpt):
    """[(name, parsed message, sidecar dict)] the sink holds for `rcpt`, oldest first."""
    d = os.path.join(sink_dir, rcpt.lower())
    try:
        names = sorted(n for n in os.listdir(d) if n.endswith(".eml") and not n.startswith("."))
    except FileNotFoundError:
        return []
    out = []
    for n in names:
        msg = parse_sink_mail(os.path.join(d, n))
        try:
            with open(os.path.join(d, n[:-4] + ".json")) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if msg is not None:
            out.append((n, msg, meta))
    return out


def parse_sink_mail(path):
    try:
        with open(path, "rb") as f:
            return email.message_from_binary_file(f, policy=email.policy.compat32)
    except OSError:
        return None


def header(msg, name):
    v = msg.get(name)
    return str(email.header.make_header(email.header.decode_header(v))) if v else ""


def sample(pid):
    rss_kb = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss_kb = int(line.split()[1])
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, ValueError):
        return None
    return rss_kb, fds


def slope_per_10min(points):
    """Least-squares slope of [(seconds, value)], per 600 s."""
    if len(points) < 3:
        return None
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    if sxx == 0:
        return None
    return sum((t - mx) * (v - my) for t, v in points) / sxx * 600


def stats(v):
    v = sorted(v)
    if not v:
        return None
    return {"n": len(v), "p50": round(B.percentile(v, 50), 1), "p90": round(B.percentile(v, 90), 1),
            "p99": round(B.percentile(v, 99), 1), "max": round(v[-1], 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--servers", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=4.0, help="events per second")
    ap.add_argument("--sample-secs", type=float, default=10)
    ap.add_argument("--window-minutes", type=float, default=10)
    ap.add_argument("--warmup-minutes", type=float, default=2)
    ap.add_argument("--sla-minutes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=19)
    a = ap.parse_args()

    env = B.load_env(a.servers)
    sink = env["CASEGATE_TEST_SMTP_DIR"]
    run = "s" + time.strftime("%H%M%S")
    user = f"soak-{run}"
    d = os.path.join(a.work, "soak")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    db = os.path.join(d, "casegate.db")
    cfg = os.path.join(d, "casegate.toml")
    B.write_config(cfg, env, a.repo, db, user=user, extra=soak_config_extra(a.sla_minutes))
    csv = os.path.join(d, "contracts.csv")
    B.contracts_csv(csv)
    B.casegate(a.bin, cfg, "contracts", "import", csv)

    imap = B.imap_login(env, user)
    imap.select("INBOX")
    stderr = os.path.join(d, "casegate.stderr")
    t = B.Timed([a.bin, "--config", cfg, "run"], stderr)
    deadline = time.monotonic() + 30
    while "IMAP connected" not in open(stderr, errors="replace").read():
        if time.monotonic() > deadline or t.proc.poll() is not None:
            raise RuntimeError(f"the daemon did not connect; see {stderr}")
        time.sleep(0.2)
    pid = t.pid()

    rng = random.Random(a.seed)
    kinds = [k for k, w in MIX for _ in range(w)]
    sent = {k: 0 for k, _ in MIX}
    skipped = {k: 0 for k, _ in MIX}
    new_at = {}  # index -> (monotonic s since start, wall ns)
    acked = []  # indices whose acknowledgement was seen
    unacked = set()
    ack_of = {}  # index -> (file name, message, sidecar) of its acknowledgement
    answered = set()  # notification files already read
    notes = []  # notifications not answered yet: (engineer, message)
    bounced = set()
    samples = []
    start = time.monotonic()
    end = start + a.minutes * 60
    next_sample = start
    i_new = 0
    n_events = 0
    B.log(f"soak: {a.minutes} min at {a.rate} events/s, pid {pid}, work in {d}")

    def append(raw):
        typ, _ = imap.append("INBOX", None, None, raw)
        assert typ == "OK", typ

    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_sample:
            s = sample(pid)
            if s is None:
                raise RuntimeError(f"the daemon is gone; see {stderr}")
            samples.append((round(now - start, 1), s[0], s[1]))
            next_sample += a.sample_secs
            if len(samples) % 30 == 0:
                B.log(f"soak: {round((now - start) / 60, 1)} min, rss {s[0] // 1024} MB, {s[1]} fds, events {sent}")
        due = start + n_events / a.rate
        if due > now:
            time.sleep(min(due - now, max(0.0, next_sample - now)))
            continue
        n_events += 1
        kind = rng.choice(kinds)
        # Acknowledgements seen so far (the sink's folder per customer).
        for i in sorted(unacked):
            first = sink_mails(sink, B.sender_of(run, i)[0])[:1]
            if first:
                ack_of[i] = first[0]
                acked.append(i)
                unacked.discard(i)
        if kind == "new" or (kind in ("reply", "bounce") and not acked):
            if kind != "new":
                skipped[kind] += 1
            new_at[i_new] = (time.monotonic() - start, B.now_ns())
            unacked.add(i_new)
            append(B.make_mail(run, i_new))
            i_new += 1
            sent["new"] += 1
        elif kind == "reply":
            i = rng.choice(acked)
            sender, _ = B.sender_of(run, i)
            _, ack, _ = ack_of[i]
            raw = (f"From: {sender}\r\nTo: {B.SUPPORT}\r\nSubject: Re: {header(ack, 'Subject')}\r\n"
                   f"Message-ID: <reply-{run}-{n_events}@soak.invalid>\r\nIn-Reply-To: {ack['Message-ID']}\r\n"
                   f"References: {ack['Message-ID']}\r\nDate: {email.utils.formatdate()}\r\n"
                   f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                   f"Here is the output you asked for (event {n_events}).\r\n").encode()
            append(raw)
            sent["reply"] += 1
        elif kind == "engineer":
            # New notifications only: the sink's folders grow all run long.
            for addr, *_ in ENGINEERS:
                d = os.path.join(sink, addr)
                names = os.listdir(d) if os.path.isdir(d) else []
                for n in sorted(x for x in names if x.endswith(".eml") and (addr, x) not in answered):
                    answered.add((addr, n))
                    note = parse_sink_mail(os.path.join(d, n))
                    if note is not None and note.get("Reply-To"):
                        notes.append((addr, note))
            if not notes:
                skipped["engineer"] += 1
                continue
            addr, note = notes.pop(0)
            cmd = COMMANDS[sent["engineer"] % len(COMMANDS)]
            raw = (f"From: {addr}\r\nTo: {note['Reply-To']}\r\nSubject: Re: {header(note, 'Subject')}\r\n"
                   f"Message-ID: <eng-{run}-{n_events}@example.com>\r\nIn-Reply-To: {note['Message-ID']}\r\n"
                   f"References: {note['Message-ID']}\r\nDate: {email.utils.formatdate()}\r\n"
                   f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
                   f"{cmd}\r\n\r\nLooking into it (event {n_events}).\r\n").encode()
            append(raw)
            sent["engineer"] += 1
        elif kind == "bounce":
            candidates = [i for i in acked if i not in bounced]
            if not candidates:
                skipped["bounce"] += 1
                continue
            i = rng.choice(candidates)
            bounced.add(i)
            sender, _ = B.sender_of(run, i)
            _, ack, meta = ack_of[i]
            rp = meta["mail_from"]
            raw = (f"Delivered-To: {rp}\r\nFrom: MAILER-DAEMON@mx.soak.invalid\r\nTo: {rp}\r\n"
                   f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-{run}-{n_events}@mx.soak.invalid>\r\n"
                   f"Date: {email.utils.formatdate()}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
                   f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b{n_events}\"\r\n\r\n"
                   f"--b{n_events}\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
                   f"--b{n_events}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.soak.invalid\r\n\r\n"
                   f"Final-Recipient: rfc822; {sender}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
                   f"--b{n_events}\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {ack['Message-ID']}\r\n"
                   f"From: {ack['From']}\r\nTo: {sender}\r\n\r\n--b{n_events}--\r\n").encode()
            append(raw)
            sent["bounce"] += 1

    B.log("soak: feeding stopped; waiting for the last acknowledgements")
    wait_end = time.monotonic() + 120
    indices = list(range(i_new))
    while time.monotonic() < wait_end:
        if all(B.sink_ack_files(sink, run, indices).values()) and B.mailbox_count(env, user, "INBOX") == 0:
            break
        time.sleep(0.5)
    s = sample(pid)
    if s:
        samples.append((round(time.monotonic() - start, 1), s[0], s[1]))
    t.signal(signal.SIGTERM)
    rc = t.wait(60)
    imap.logout()

    acks = B.sink_ack_files(sink, run, indices)
    window = a.window_minutes * 60
    windows = {}
    for i in indices:
        if acks[i]:
            at, sent_ns = new_at[i]
            # The sink names files by CLOCK_MONOTONIC ns, as B.now_ns() is.
            windows.setdefault(int(at // window), []).append((acks[i][0] - sent_ns) / 1e6)
    latency = [{"window": k, "from_minute": round(k * window / 60, 1), **stats(v)} for k, v in sorted(windows.items())]

    conn = B.db_connect(db)
    events = dict(conn.execute("SELECT kind, COUNT(*) FROM events GROUP BY kind").fetchall())
    outbound = dict(conn.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind").fetchall())
    outbox_status = dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
    new_cases = conn.execute(
        "SELECT COUNT(DISTINCT case_id), COUNT(*) FROM messages WHERE direction = 'in' AND message_id LIKE ?",
        (f"bench-{run}-%",)).fetchone()
    ack_ids = {r[0] for r in conn.execute(
        "SELECT message_id FROM outbox WHERE kind = 'acknowledgement'").fetchall()}
    conn.close()
    # Each new mail's acknowledgement reached the sink exactly once (the customer may
    # also have engineers' replies and closing mail in the same folder; a bounced
    # acknowledgement is marked failed in the store after it was delivered).
    ack_copies = []
    for i in indices:
        ids = [m["Message-ID"].strip().strip("<>") for _, m, _ in sink_mails(sink, B.sender_of(run, i)[0])]
        ack_copies.append(sum(1 for x in ids if x in ack_ids))
    warm = a.warmup_minutes * 60
    after = [(t_, r, f) for t_, r, f in samples if t_ >= warm]
    rss_slope = slope_per_10min([(t_, r / 1024) for t_, r, _ in after])
    fd_slope = slope_per_10min([(t_, f) for t_, _, f in after])
    inbox_left = B.mailbox_count(env, user, "INBOX")
    correct = (rc == 0 and new_cases[0] == i_new and new_cases[1] == i_new and inbox_left == 0
               and all(c == 1 for c in ack_copies))
    res = {
        "scenario": "soak",
        "cores": B.cores(),
        "minutes": a.minutes,
        "rate_per_second": a.rate,
        "events_sent": sent,
        "events_skipped_for_want_of_a_target": skipped,
        "sla_minutes": a.sla_minutes,
        "store_events": events,
        "outbound_by_kind": outbound,
        "outbox_by_status": outbox_status,
        "rss_mb_first": round(samples[0][1] / 1024, 1) if samples else None,
        "rss_mb_last": round(samples[-1][1] / 1024, 1) if samples else None,
        "rss_mb_max": round(max(r for _, r, _ in samples) / 1024, 1) if samples else None,
        "rss_slope_mb_per_10min_after_warmup": None if rss_slope is None else round(rss_slope, 2),
        "open_files_first": samples[0][2] if samples else None,
        "open_files_last": samples[-1][2] if samples else None,
        "open_files_slope_per_10min_after_warmup": None if fd_slope is None else round(fd_slope, 2),
        "new_mail_append_to_ack_ms_per_window": latency,
        "samples_seconds_rss_kb_fds": samples,
        "checks": {"daemon_exit_code": rc, "new_mails": i_new, "cases_of_new_mails": new_cases[0],
                   "inbound_new_mails": new_cases[1], "inbox_left": inbox_left,
                   "customers_with_exactly_one_ack": sum(1 for c in ack_copies if c == 1)},
        "correct": correct,
    }
    print(json.dumps(res), flush=True)
    return 0 if correct else 1


if __name__ == "__main__":
    sys.exit(main())
