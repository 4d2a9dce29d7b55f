"""casegate's benchmark suite (issue 7). Started by scripts/bench, which builds the
release binary and starts the test servers; see `scripts/bench --help`.

Prints one JSON object per scenario on stdout (progress goes to stderr):
  drain    N new-case mails in the inbox, `casegate run --once`: cases/s, acks/s, peak RSS
  limits   same run: raw UID FETCH rate from Dovecot and raw SMTP acceptance rate of
           the sink, and casegate's rates as fractions of them
  latency  the daemon idling; mails appended one by one at a steady rate: APPEND to
           acknowledgement at the sink, p50/p99/max
  growth   drain throughput and SLA-timer work per tick with a small and a large store
  cluster  1, 2 and 3 instances over 3 mailboxes on PostgreSQL: cases/s, acks/s,
           takeover time after kill -9 (scripts/bench.d/cluster.py; not in the default run)
Every scenario checks that each mail became exactly one case with exactly one
acknowledgement (field `correct`).
"""

import argparse
import imaplib
import json
import os
import shutil
import signal
import smtplib
import sqlite3
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import cluster as C  # noqa: E402
import seed as S  # noqa: E402

TARGETS = {
    "drain_cases_per_second": 1000,
    "drain_fraction_of_raw_fetch_move": 0.5,
    "outbox_fraction_of_raw_smtp": 0.8,
    "intake_cpu_ms_per_text_mail": 0.4,
    "latency_p99_ms": 1000,
    "latency_p50_ms": 200,
    "load_latency_p99_ms": 300,
    "peak_rss_mb": 150,
    "growth_ratio": 0.8,
}


class Ctx:
    def __init__(self, args):
        self.args = args
        self.repo = args.repo
        self.assets = args.assets or args.repo
        self.bin = args.bin
        self.env = B.load_env(args.servers)
        self.sink = self.env["CASEGATE_TEST_SMTP_DIR"]
        self.work = args.work
        self.stamp = time.strftime("%H%M%S") + f"{os.getpid() % 1000:03d}"

    def fresh_dir(self, name):
        d = os.path.join(self.work, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    def new_store(self, d, user, smtp=True, imap=True, log_level="info", extra=""):
        """A config and an empty migrated store with the bench contracts imported."""
        db = os.path.join(d, "casegate.db")
        cfg = os.path.join(d, "casegate.toml")
        B.write_config(cfg, self.env, self.assets, db, user=user, smtp=smtp, imap=imap, log_level=log_level, extra=extra)
        csv = os.path.join(d, "contracts.csv")
        B.contracts_csv(csv)
        # Creates the store and applies the migrations (`cases list` refuses a missing file).
        B.casegate(self.bin, cfg, "contracts", "import", csv)
        if self.args.experiment_sql:
            # What-if runs (e.g. a candidate index) without rebuilding casegate.
            conn = B.db_connect(db)
            conn.executescript(self.args.experiment_sql)
            conn.commit()
            conn.close()
        return cfg, db


BUILD = {}


def emit(obj):
    obj.setdefault("build", BUILD)
    # Other work on the machine skews every figure: say how busy it was.
    obj["loadavg_1m_5m_at_end"] = [round(x, 2) for x in os.getloadavg()[:2]]
    print(json.dumps(obj, ensure_ascii=False), flush=True)


def mb(kb):
    return round(kb / 1024, 1) if kb is not None else None


# ------------------------------------------------------------------ raw limits


def raw_imap_fetch(env, user, mailbox, batch):
    """A plain UID FETCH loop (python imaplib, one connection, `batch` UIDs per command,
    BODY.PEEK[] + INTERNALDATE, no processing). Returns (mails, bytes, seconds)."""
    imap = B.imap_login(env, user)
    t0 = time.monotonic()
    typ, _ = imap.select(mailbox, readonly=True)
    assert typ == "OK", typ
    typ, data = imap.uid("SEARCH", None, "ALL")
    uids = [int(u) for u in data[0].split()]
    mails = size = 0
    for k in range(0, len(uids), batch):
        chunk = uids[k:k + batch]
        typ, data = imap.uid("FETCH", f"{chunk[0]}:{chunk[-1]}", "(UID INTERNALDATE BODY.PEEK[])")
        assert typ == "OK", typ
        for item in data:
            if isinstance(item, tuple):
                mails += 1
                size += len(item[1])
    secs = time.monotonic() - t0
    imap.logout()
    return mails, size, secs


def raw_imap_fetch_move(env, user, mailbox, batch, to="RawMoved"):
    """The least work any gateway does per mail: a plain client (python imaplib, one
    connection) fetching `batch` UIDs per UID FETCH (BODY.PEEK[] + INTERNALDATE) and
    moving them out with one UID MOVE per batch. Afterwards (not timed) the mails are
    moved back, so that casegate drains the same mails. Returns (mails, seconds)."""
    imap = B.imap_login(env, user)
    imap.create(to)
    t0 = time.monotonic()
    typ, _ = imap.select(mailbox)
    assert typ == "OK", typ
    typ, data = imap.uid("SEARCH", None, "ALL")
    uids = [int(u) for u in data[0].split()]
    mails = 0
    for k in range(0, len(uids), batch):
        chunk = uids[k:k + batch]
        uid_set = f"{chunk[0]}:{chunk[-1]}"
        typ, data = imap.uid("FETCH", uid_set, "(UID INTERNALDATE BODY.PEEK[])")
        assert typ == "OK", typ
        mails += sum(1 for item in data if isinstance(item, tuple))
        typ, data = imap.uid("MOVE", uid_set, to)
        assert typ == "OK", (typ, data)
    secs = time.monotonic() - t0
    imap.select(to)
    typ, data = imap.uid("MOVE", "1:*", mailbox)
    assert typ == "OK", (typ, data)
    imap.logout()
    return mails, secs


def raw_smtp_send(env, messages, run):
    """The sink's acceptance rate for `messages` [(sender, raw)] from a plain client
    (python smtplib, one connection, one recipient each). Returns seconds."""
    s = smtplib.SMTP("127.0.0.1", int(env["CASEGATE_TEST_SMTP_PORT"]))
    s.ehlo("bench.localhost")
    t0 = time.monotonic()
    for j, (sender, raw) in enumerate(messages):
        refused = s.sendmail(sender, [f"raw{run}-{j}@bench.invalid"], raw)
        assert not refused, refused
    secs = time.monotonic() - t0
    s.quit()
    return secs


# ------------------------------------------------------------------ drain


def run_once(ctx, cfg, d, n_expected, timeout):
    t = B.Timed([ctx.bin, "--config", cfg, "run", "--once"], os.path.join(d, "casegate.stderr"))
    rc = t.wait(timeout)
    if rc != 0:
        raise RuntimeError(f"run --once exited {rc}; see {d}/casegate.stderr")
    t_in, processed = t.line_time("processed ")
    t_sla, _ = t.line_time("SLA: ")
    t_out, outbox = t.line_time("outbox: ")
    return t, {
        "summary": [text for _, text in t.lines],
        "seconds_total": round(t.seconds, 3),
        "seconds_intake": round(t_in, 3) if t_in is not None else None,
        "seconds_outbox": round(t_out - t_sla, 3) if t_out is not None and t_sla is not None else None,
        "t_sla": t_sla,
        "peak_rss_mb": mb(t.maxrss_kb),
    }


def drain_rates(ctx, db, run, indices, wall_seconds, phases):
    n = len(indices)
    conn = B.db_connect(db)
    lo, hi = conn.execute(
        "SELECT MIN(c.created_at), MAX(c.created_at) FROM cases c JOIN messages m ON m.case_id = c.id "
        "WHERE m.direction = 'in' AND m.message_id LIKE ?", (f"bench-{run}-%",)).fetchone()
    conn.close()
    acks = B.sink_ack_files(ctx.sink, run, indices)
    ack_ns = sorted(v[0] for v in acks.values() if v)
    out = {
        "cases_per_second": round(n / phases["seconds_intake"], 1) if phases["seconds_intake"] else None,
        "cases_per_second_first_to_last_commit": round((n - 1) / ((hi - lo) / 1000), 1) if hi and hi > lo else None,
    }
    # The commit rate at the start and at the end of the drain (does it slow down?).
    conn = B.db_connect(db)
    created = [r[0] for r in conn.execute(
        "SELECT c.created_at FROM cases c JOIN messages m ON m.case_id = c.id WHERE m.direction = 'in' "
        "AND m.message_id LIKE ? ORDER BY c.id", (f"bench-{run}-%",))]
    conn.close()
    k = max(2, min(1000, len(created) // 10))
    if len(created) >= 2 * k:
        span = lambda a: (a[-1] - a[0]) / 1000 or 1e-3  # noqa: E731
        out[f"cases_per_second_first_{k}"] = round((k - 1) / span(created[:k]), 1)
        out[f"cases_per_second_last_{k}"] = round((k - 1) / span(created[-k:]), 1)
    if phases["seconds_outbox"]:
        out["acks_per_second"] = round(len(ack_ns) / phases["seconds_outbox"], 1)
    if len(ack_ns) > 1:
        out["acks_per_second_first_to_last_at_sink"] = round((len(ack_ns) - 1) / ((ack_ns[-1] - ack_ns[0]) / 1e9), 1)
    out["end_to_end_mails_per_second"] = round(n / wall_seconds, 1)
    return out


def scenario_drain(ctx):
    """One drain per mix of `--drain-mixes` (text mail only; every 10th mail with a
    1 MiB attachment)."""
    for mix in [m.strip() for m in ctx.args.drain_mixes.split(",") if m.strip()]:
        drain_one(ctx, mix)


def drain_one(ctx, mix):
    """N mails in the inbox; the raw limits on the same mails; then casegate in two
    runs on one store, so that each half has its own wall time and CPU time: `run --once`
    without [smtp] (intake: fetch, parse, classify, commit, move; the outbox waits),
    then `run --once` without [imap] (outbox: render, compose, send)."""
    a = ctx.args
    B.set_mix(mix)
    n = a.mails
    run = f"d{mix[0]}{ctx.stamp}"
    user = f"bench-{run}"
    d = ctx.fresh_dir("drain")
    cfg, db = ctx.new_store(d, user)
    cfg_intake = os.path.join(d, "intake.toml")
    B.write_config(cfg_intake, ctx.env, ctx.assets, db, user=user, smtp=False)
    cfg_outbox = os.path.join(d, "outbox.toml")
    B.write_config(cfg_outbox, ctx.env, ctx.assets, db, imap=False)
    indices = list(range(n))
    B.log(f"drain ({mix}): delivering {n} mails to {user} over LMTP ({a.lmtp_connections} connections)")
    deliver_secs = B.lmtp_deliver(ctx.env, user, run, indices, a.lmtp_connections)
    inbox = B.mailbox_count(ctx.env, user, "INBOX")
    assert inbox == n, f"INBOX has {inbox} mails, expected {n}"
    os.sync()  # the delivered mail is on disk before anything is timed
    B.log(f"drain ({mix}): delivered in {deliver_secs:.1f} s; raw UID FETCH of the same mails")
    f_mails, f_bytes, f_secs = raw_imap_fetch(ctx.env, user, "INBOX", a.fetch_batch)
    assert f_mails == n, (f_mails, n)
    B.log(f"drain ({mix}): raw fetch {f_mails / f_secs:.0f} mails/s; raw UID FETCH + UID MOVE")
    m_mails, m_secs = raw_imap_fetch_move(ctx.env, user, "INBOX", a.raw_move_batch)
    assert m_mails == n, (m_mails, n)
    inbox = B.mailbox_count(ctx.env, user, "INBOX")
    assert inbox == n, f"INBOX has {inbox} mails after the raw MOVE back, expected {n}"
    os.sync()
    B.log(f"drain ({mix}): raw fetch+move {m_mails / m_secs:.0f} mails/s; casegate run --once, intake only")
    t_in, p_in = run_once(ctx, cfg_intake, d, n, a.timeout)
    B.log(f"drain ({mix}): intake {p_in['seconds_intake']} s; casegate run --once, outbox only")
    t_out, p_out = run_once(ctx, cfg_outbox, d, n, a.timeout)
    # Start-up, connecting and an empty pass, measured the same way with nothing to do.
    base_in, _ = run_once(ctx, cfg_intake, d, 0, a.timeout)
    base_out, _ = run_once(ctx, cfg_outbox, d, 0, a.timeout)
    phases = {"seconds_intake": p_in["seconds_intake"], "seconds_outbox": p_out["seconds_outbox"]}
    wall = t_in.seconds + t_out.seconds
    rates = drain_rates(ctx, db, run, indices, wall, phases)
    check = B.check_run(db, run, indices, ctx.sink)
    check["inbox_left"] = B.mailbox_count(ctx.env, user, "INBOX")
    check["processed_folder"] = B.mailbox_count(ctx.env, user, "Processed")
    check["ok"] = check["ok"] and check["inbox_left"] == 0 and check["processed_folder"] == n
    conn = B.db_connect(db)
    outgoing = conn.execute(
        "SELECT sender, raw FROM outbox WHERE status = 'sent' AND case_id IN "
        "(SELECT case_id FROM messages WHERE message_id LIKE ?) ORDER BY id", (f"bench-{run}-%",)).fetchall()
    kinds = dict(conn.execute(
        "SELECT kind, COUNT(*) FROM outbox WHERE case_id IN "
        "(SELECT case_id FROM messages WHERE message_id LIKE ?) GROUP BY kind", (f"bench-{run}-%",)).fetchall())
    conn.close()
    outbox_rate = len(outgoing) / phases["seconds_outbox"] if phases["seconds_outbox"] else None
    B.log(f"drain ({mix}): casegate {rates}; raw SMTP of the same {len(outgoing)} outgoing mails")
    s_secs = raw_smtp_send(ctx.env, outgoing, run)
    raw_fetch_rate = f_mails / f_secs
    raw_move_rate = m_mails / m_secs
    raw_smtp_rate = len(outgoing) / s_secs
    peak = max(x for x in (p_in["peak_rss_mb"], p_out["peak_rss_mb"]) if x is not None)

    def per_mail_ms(t, base, count):
        if t.cpu_seconds() is None or base.cpu_seconds() is None or not count:
            return None
        return round((t.cpu_seconds() - base.cpu_seconds()) * 1000 / count, 3)

    drain = {
        "scenario": "drain",
        "mix_name": mix,
        "cores": B.cores(),
        "mails": n,
        "mix": {"japanese": sum(1 for i in indices if i % 2), "english": sum(1 for i in indices if not i % 2),
                "with_1mib_attachment": sum(1 for i in indices if B.has_attachment(i)),
                "inbox_bytes": f_bytes},
        "delivery": {"via": f"LMTP x{a.lmtp_connections}", "seconds": round(deliver_secs, 1),
                     "mails_per_second": round(n / deliver_secs, 1)},
        **rates,
        "outgoing_mails": len(outgoing),
        "outgoing_by_kind": kinds,
        "outgoing_per_second": round(outbox_rate, 1) if outbox_rate else None,
        "peak_rss_mb": peak,
        "peak_rss_mb_intake_outbox": [p_in["peak_rss_mb"], p_out["peak_rss_mb"]],
        "seconds": {"total": round(wall, 3), "intake": phases["seconds_intake"],
                    "outbox": phases["seconds_outbox"]},
        "casegate_summary": p_in["summary"] + p_out["summary"],
        "correct": check["ok"],
        "checks": check,
    }
    cpu = {
        "scenario": "cpu_split",
        "mix_name": mix,
        "cores": B.cores(),
        "mails": n,
        "measured": ("getrusage of the casegate process (user + system, via time(1), 10 ms resolution): "
                     "run --once without [smtp] (intake), then without [imap] (outbox), each minus the same "
                     "run with nothing to do (start-up, connect, an empty pass)"),
        "intake_cpu_ms_per_mail": per_mail_ms(t_in, base_in, n),
        "outbox_cpu_ms_per_mail": per_mail_ms(t_out, base_out, n),
        "outbox_cpu_ms_per_outgoing_mail": per_mail_ms(t_out, base_out, len(outgoing)),
        "intake_seconds": {"user": t_in.cpu_user, "system": t_in.cpu_system, "wall": round(t_in.seconds, 3)},
        "outbox_seconds": {"user": t_out.cpu_user, "system": t_out.cpu_system, "wall": round(t_out.seconds, 3)},
        "idle_run_seconds": {"intake": [base_in.cpu_user, base_in.cpu_system],
                             "outbox": [base_out.cpu_user, base_out.cpu_system]},
        "correct": check["ok"],
    }
    cpu["cpu_ms_per_mail_total"] = (round(cpu["intake_cpu_ms_per_mail"] + cpu["outbox_cpu_ms_per_mail"], 3)
                                    if cpu["intake_cpu_ms_per_mail"] is not None
                                    and cpu["outbox_cpu_ms_per_mail"] is not None else None)
    limits = {
        "scenario": "limits",
        "mix_name": mix,
        "cores": B.cores(),
        "mails": n,
        "raw_imap_fetch": {"client": f"python imaplib, 1 connection, UID FETCH {a.fetch_batch} per command, BODY.PEEK[]",
                           "mails_per_second": round(raw_fetch_rate, 1), "mib_per_second": round(f_bytes / f_secs / 2**20, 1),
                           "seconds": round(f_secs, 2)},
        "raw_imap_fetch_move": {"client": (f"python imaplib, 1 connection, UID FETCH {a.raw_move_batch} per command "
                                           "(BODY.PEEK[] + INTERNALDATE), then UID MOVE of the same batch"),
                                "mails_per_second": round(raw_move_rate, 1), "seconds": round(m_secs, 2)},
        "raw_smtp_accept": {"client": "python smtplib, 1 connection, the same outgoing mails (all kinds)",
                            "messages": len(outgoing), "messages_per_second": round(raw_smtp_rate, 1),
                            "seconds": round(s_secs, 2)},
        "casegate_cases_per_second": rates["cases_per_second"],
        "casegate_acks_per_second": rates.get("acks_per_second"),
        "casegate_outgoing_per_second": drain["outgoing_per_second"],
        "drain_fraction_of_raw_imap_fetch": round(rates["cases_per_second"] / raw_fetch_rate, 3),
        "drain_fraction_of_raw_fetch_move": round(rates["cases_per_second"] / raw_move_rate, 3),
        "outbox_fraction_of_raw_smtp": round(outbox_rate / raw_smtp_rate, 3) if outbox_rate else None,
        "note": "ratios within one run on a shared machine (other builds may run): compare ratios, not rates",
    }
    drain["targets"] = {
        "cases_per_second>=1000": rates["cases_per_second"] >= TARGETS["drain_cases_per_second"],
        "peak_rss_mb<150": peak < TARGETS["peak_rss_mb"],
    }
    limits["targets"] = {
        "drain>=50%_of_raw_fetch_move": limits["drain_fraction_of_raw_fetch_move"] >= TARGETS["drain_fraction_of_raw_fetch_move"],
        "outbox>=80%_of_raw_smtp": (limits["outbox_fraction_of_raw_smtp"] or 0) >= TARGETS["outbox_fraction_of_raw_smtp"],
    }
    if mix == "text":
        cpu["targets"] = {"intake_cpu_ms_per_text_mail<=0.4":
                          (cpu["intake_cpu_ms_per_mail"] or 1e9) <= TARGETS["intake_cpu_ms_per_text_mail"]}
    emit(drain)
    emit(limits)
    emit(cpu)
    if not a.keep:
        cleanup_sink(ctx, [f"raw{run}-{j}@bench.invalid" for j in range(len(outgoing))])
    cleanup_run(ctx, [user], run, indices)


def cleanup_sink(ctx, rcpts):
    for r in rcpts:
        shutil.rmtree(os.path.join(ctx.sink, r.lower()), ignore_errors=True)


def cleanup_run(ctx, users, run, indices):
    """Unless --keep: the run's mailboxes in Dovecot and its acknowledgements in the sink
    (a 20,000-mail drain leaves 2.9 GB of mail behind)."""
    if ctx.args.keep:
        return
    for user in users:
        shutil.rmtree(os.path.join(ctx.env["CASEGATE_TEST_MAIL_DIR"], user.lower()), ignore_errors=True)
    cleanup_sink(ctx, [B.sender_of(run, i)[0] for i in indices])


# ------------------------------------------------------------------ latency


def raw_idle_latency(env, run, n, rate):
    """The server's own part of the latency: a plain client IDLEs on a user's INBOX while
    another appends `n` mails at `rate`/s; time from APPEND to the `* N EXISTS` that
    shows mail N. Returns sorted latencies in ms."""
    import socket  # noqa: F401
    user = f"bench-{run}-idle"
    watcher = B.imap_login(env, user)
    watcher.select("INBOX")
    watcher.send(b"i1 IDLE\r\n")
    line = watcher.readline()
    assert line.startswith(b"+"), line
    seen = {}  # count -> first ns it was reported

    def read():
        while True:
            line = watcher.readline()
            if not line or line.startswith(b"i1 "):
                return
            parts = line.split()
            if len(parts) >= 3 and parts[0] == b"*" and parts[2].upper() == b"EXISTS":
                seen.setdefault(int(parts[1]), B.now_ns())

    import threading
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    appender = B.imap_login(env, user)
    sent = []
    start = time.monotonic()
    for i in range(n):
        pause = start + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        sent.append(B.now_ns())
        typ, _ = appender.append("INBOX", None, None, B.make_mail(run + "idle", i))
        assert typ == "OK", typ
    appender.logout()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and max(seen, default=0) < n:
        time.sleep(0.05)
    watcher.send(b"DONE\r\n")
    reader.join(5)
    try:
        watcher.logout()
    except Exception:
        pass
    out = []
    for i in range(n):
        first = min((t for c, t in seen.items() if c >= i + 1), default=None)
        if first is not None:
            out.append((first - sent[i]) / 1e6)
    return sorted(out)



def wait_for_log(path, needle, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path, "rb") as f:
                if needle.encode() in f.read():
                    return True
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    return False


def scenario_latency(ctx):
    """One latency object per `--latency-recheck-ms` value (200: the default
    configuration, 0: IDLE alone); Dovecot's raw IDLE latency is measured once, after
    the first."""
    raw_idle = None
    B.set_mix(ctx.args.latency_mix)
    for i, recheck in enumerate(int(x) for x in ctx.args.latency_recheck_ms.split(",")):
        raw_idle = latency_run(ctx, f"l{i}{ctx.stamp}", recheck, raw_idle, ctx.args.latency_mails,
                               ctx.args.latency_rate)


def scenario_load(ctx):
    """Latency under load: mail arriving at a steady `--load-rate` per second for
    `--load-seconds` while the daemon runs with its default configuration."""
    a = ctx.args
    B.set_mix(a.latency_mix)
    latency_run(ctx, f"u{ctx.stamp}", 200, "skip", int(a.load_rate * a.load_seconds), a.load_rate,
                scenario="latency_under_load")


def latency_run(ctx, run, recheck_ms, raw_idle, n, rate, scenario="latency"):
    a = ctx.args
    user = f"bench-{run}"
    d = ctx.fresh_dir("latency")
    cfg, db = ctx.new_store(d, user)
    # The user's INBOX exists before the daemon selects it.
    imap = B.imap_login(ctx.env, user)
    imap.select("INBOX")
    stderr = os.path.join(d, "casegate.stderr")
    env = dict(os.environ, CASEGATE__IMAP__IDLE_RECHECK_MS=str(recheck_ms))
    t = B.Timed([ctx.bin, "--config", cfg, "run"], stderr, env=env)
    if not wait_for_log(stderr, "IMAP connected", 30):
        t.signal(signal.SIGKILL)
        t.wait()
        raise RuntimeError(f"the daemon did not connect; see {stderr}")
    time.sleep(1.0)  # the empty drain, then IDLE
    indices = list(range(n))
    sent_ns, done_ns = {}, {}
    B.log(f"latency: appending {n} mails at {rate}/s while the daemon idles (imap.idle_recheck_ms = {recheck_ms})")
    start = time.monotonic()
    for i in indices:
        due = start + i / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        raw = B.make_mail(run, i)
        sent_ns[i] = B.now_ns()
        typ, _ = imap.append("INBOX", None, None, raw)
        done_ns[i] = B.now_ns()
        assert typ == "OK", typ
    append_secs = time.monotonic() - start
    imap.logout()
    deadline = time.monotonic() + a.latency_wait
    while time.monotonic() < deadline:
        acks = B.sink_ack_files(ctx.sink, run, indices)
        if all(acks.values()):
            break
        time.sleep(0.2)
    t.signal(signal.SIGTERM)
    rc = t.wait(60)
    acks = B.sink_ack_files(ctx.sink, run, indices)
    lat = sorted((acks[i][0] - sent_ns[i]) / 1e6 for i in indices if acks[i])
    lat_small = sorted((acks[i][0] - sent_ns[i]) / 1e6 for i in indices if acks[i] and not B.has_attachment(i))
    lat_after_ok = sorted((acks[i][0] - done_ns[i]) / 1e6 for i in indices if acks[i])
    check = B.check_run(db, run, indices, ctx.sink)
    check["daemon_exit_code"] = rc
    if raw_idle is None and scenario == "latency":
        B.log(f"latency: raw IDLE notification latency of Dovecot ({a.latency_raw_mails} appends at {rate}/s)")
        raw_idle = raw_idle_latency(ctx.env, run, a.latency_raw_mails, rate)
    check["ok"] = check["ok"] and rc == 0 and len(lat) == n

    def stats(v):
        return {"p50": round(B.percentile(v, 50), 1), "p90": round(B.percentile(v, 90), 1),
                "p99": round(B.percentile(v, 99), 1), "max": round(v[-1], 1), "n": len(v)} if v else None

    res = {
        "scenario": scenario,
        "cores": B.cores(),
        "mails": n,
        "mix_name": a.latency_mix,
        "imap_idle_recheck_ms": recheck_ms,
        "append_rate_per_second": rate,
        "achieved_append_rate_per_second": round(n / append_secs, 1),
        "mix": "en/ja" + (", every 10th with a 1 MiB attachment" if B.ATTACH_EVERY else ", text only"),
        "append_to_ack_ms": stats(lat),
        "append_to_ack_ms_without_attachment": stats(lat_small),
        "append_ok_to_ack_ms": stats(lat_after_ok),
        "limit_raw_idle_append_to_exists_ms": stats(raw_idle) if isinstance(raw_idle, list) else None,
        "limit_client": "python imaplib: one connection in IDLE, another appending at the same rate",
        "daemon_peak_rss_mb": mb(t.maxrss_kb),
        "correct": check["ok"],
        "checks": check,
    }
    s = res["append_to_ack_ms"] or {}
    if scenario == "latency":
        res["targets"] = {"p99<1000ms": (s.get("p99") or 1e9) < TARGETS["latency_p99_ms"],
                          "p50<200ms": (s.get("p50") or 1e9) < TARGETS["latency_p50_ms"]}
    else:
        res["targets"] = {"p99<300ms": (s.get("p99") or 1e9) < TARGETS["load_latency_p99_ms"]}
    emit(res)
    cleanup_run(ctx, [user, f"bench-{run}-idle"], run, indices)
    return raw_idle


# ------------------------------------------------------------------ growth


def sla_tick_seconds(ctx, d, db_src, due, repeats):
    """`run --once` on a copy of the store without [imap] and [smtp]: only the SLA timer
    runs (plus start-up). Returns (baseline seconds with nothing due, seconds with `due`
    due clocks, warnings reported)."""
    db = os.path.join(d, "sla.db")
    cfg = os.path.join(d, "sla.toml")
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(db + ext):
            os.remove(db + ext)
    shutil.copyfile(db_src, db)
    B.write_config(cfg, ctx.env, ctx.assets, db, smtp=False, imap=False, log_level="warn")

    def once():
        t = B.Timed([ctx.bin, "--config", cfg, "run", "--once"], os.path.join(d, "sla.stderr"))
        if t.wait(ctx.args.timeout) != 0:
            raise RuntimeError(f"SLA run --once failed; see {d}/sla.stderr")
        _, line = t.line_time("SLA: ")
        return t.seconds, line

    base = statistics.median(once()[0] for _ in range(repeats))
    runs, warned = [], []
    for _ in range(repeats):
        changed = S.make_due(db, due)
        secs, line = once()
        runs.append(secs)
        warned.append(int(line.split()[1]) if line else None)
    secs = statistics.median(runs)
    # The due-clock query itself, timed directly on the same store.
    conn = sqlite3.connect(db)
    q = ("SELECT id, case_id, kind, started_at, due_at, warn_at, warned_at FROM sla_clocks "
         "WHERE next_check_at IS NOT NULL AND next_check_at <= ? ORDER BY next_check_at LIMIT 200")
    now_ms = int(time.time() * 1000)
    plan = " / ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + q, (now_ms,)))
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        conn.execute(q, (now_ms,)).fetchall()
        times.append(time.perf_counter() - t0)
    running = conn.execute("SELECT COUNT(*) FROM sla_clocks WHERE state = 'running'").fetchone()[0]
    conn.close()
    return {"baseline_run_seconds": round(base, 3), "run_seconds_with_due": round(secs, 3), "due_clocks": changed,
            "warned": warned, "running_clocks": running, "repeats": repeats,
            "ms_per_due_clock": round((secs - base) * 1000 / changed, 2) if changed else None,
            "due_query_ms": round(statistics.median(times) * 1000, 3), "due_query_plan": plan}


def growth_one(ctx, size):
    a = ctx.args
    n = a.growth_mails
    B.set_mix("attachments")
    run = f"g{size}x{ctx.stamp}"
    user = f"bench-{run}"
    d = ctx.fresh_dir(f"growth-{size}")
    cfg, db = ctx.new_store(d, user)
    B.log(f"growth: seeding {size} cases")
    seeded = S.seed(db, size)
    snapshot = os.path.join(d, "seeded.db")
    shutil.copyfile(db, snapshot)  # the WAL was checkpointed and truncated by seed()
    indices = list(range(n))
    B.lmtp_deliver(ctx.env, user, run, indices, a.lmtp_connections)
    os.sync()  # the seeded store, its snapshot and the mail are on disk before timing
    B.log(f"growth: {size} cases, draining {n} mails")
    t, phases = run_once(ctx, cfg, d, n, a.timeout)
    rates = drain_rates(ctx, db, run, indices, t.seconds, phases)
    check = B.check_run(db, run, indices, ctx.sink)
    B.log(f"growth: {size} cases: {rates}; SLA timer")
    sla = sla_tick_seconds(ctx, d, snapshot, a.sla_due, a.sla_repeats)
    if not a.keep:
        for f in (snapshot, os.path.join(d, "sla.db")):
            if os.path.exists(f):
                os.remove(f)
    cleanup_run(ctx, [user], run, indices)
    return {"existing_cases": size, "seeded_rows": seeded, "mails": n, **rates, "peak_rss_mb": phases["peak_rss_mb"],
            "seconds": {"total": phases["seconds_total"], "intake": phases["seconds_intake"],
                        "outbox": phases["seconds_outbox"]},
            "sla_timer": sla, "correct": check["ok"], "checks": check}


def scenario_growth(ctx):
    a = ctx.args
    small = growth_one(ctx, a.growth_small)
    large = growth_one(ctx, a.growth_large)

    def ratio(key):
        return round(large[key] / small[key], 3) if small.get(key) and large.get(key) else None

    sla_s, sla_l = small["sla_timer"]["ms_per_due_clock"], large["sla_timer"]["ms_per_due_clock"]
    res = {
        "scenario": "growth",
        "cores": B.cores(),
        "small": small,
        "large": large,
        "drain_throughput_ratio": ratio("cases_per_second"),
        "ack_throughput_ratio": ratio("acks_per_second"),
        "sla_tick_throughput_ratio": round(sla_s / sla_l, 3) if sla_s and sla_l and sla_l > 0 else None,
        "sla_measured": ("wall time of `run --once` without [imap]/[smtp] (start-up + one SLA tick) with "
                         f"{a.sla_due} clocks due for their warning, minus the same with none due (medians of "
                         f"{a.sla_repeats} runs each); "
                         "throughput ratio = ms per due clock small / large. due_query_ms: the timer's "
                         "due-clock query alone, among all running clocks"),
        "correct": small["correct"] and large["correct"],
    }
    res["targets"] = {"drain_ratio>=0.8": (res["drain_throughput_ratio"] or 0) >= 0.8,
                      "sla_tick_ratio>=0.8": (res["sla_tick_throughput_ratio"] or 0) >= 0.8}
    emit(res)


# ------------------------------------------------------------------ main


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--assets", help="folder with config/routing.toml and templates/ (default: --repo)")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--servers", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", default="drain,latency,load,growth",
                    help="comma-separated scenarios (limits and cpu_split run with drain)")
    ap.add_argument("--mails", type=int, default=20000, help="drain: mails (default 20000)")
    ap.add_argument("--lmtp-connections", type=int, default=4)
    ap.add_argument("--fetch-batch", type=int, default=200, help="raw fetch: UIDs per UID FETCH (casegate's default)")
    ap.add_argument("--raw-move-batch", type=int, default=500, help="raw fetch+move: UIDs per UID FETCH and UID MOVE")
    ap.add_argument("--drain-mixes", default="text,attachments",
                    help="drain once per mix: text (text mail only), attachments (every 10th with 1 MiB)")
    ap.add_argument("--latency-mix", default="attachments", choices=sorted(B.MIXES),
                    help="mail mix of the latency scenarios")
    ap.add_argument("--load-rate", type=float, default=100.0, help="latency under load: appends per second")
    ap.add_argument("--load-seconds", type=float, default=60.0, help="latency under load: seconds of arrivals")
    ap.add_argument("--latency-mails", type=int, default=500)
    ap.add_argument("--latency-recheck-ms", default="200,0",
                    help="imap.idle_recheck_ms values, one latency run each (200: the default; 0: IDLE alone)")
    ap.add_argument("--latency-rate", type=float, default=20.0, help="appends per second")
    ap.add_argument("--latency-raw-mails", type=int, default=200, help="appends for the raw IDLE latency")
    ap.add_argument("--latency-wait", type=float, default=60.0, help="seconds to wait for the last acks")
    ap.add_argument("--growth-mails", type=int, default=2000)
    ap.add_argument("--growth-small", type=int, default=1000)
    ap.add_argument("--growth-large", type=int, default=200000)
    ap.add_argument("--sla-due", type=int, default=100, help="clocks made due for the SLA tick measurement")
    ap.add_argument("--sla-repeats", type=int, default=5, help="runs per SLA measurement (median)")
    ap.add_argument("--cluster-mails", type=int, default=1000, help="cluster: mails per mailbox (3 mailboxes)")
    ap.add_argument("--cluster-takeover-ms", type=int, default=5000, help="cluster: cluster.takeover_ms")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds allowed for one casegate run")
    ap.add_argument("--keep", action="store_true", help="keep large files (seeded snapshots, raw SMTP copies)")
    ap.add_argument("--experiment-sql", default="",
                    help="SQL run on every new store after the migrations (what-if runs, e.g. an index)")
    ap.add_argument("--build-info", default="", help="shown in every result (e.g. the commit)")
    a = ap.parse_args()
    import hashlib
    with open(a.bin, "rb") as f:
        BUILD.update({"binary_sha256": hashlib.sha256(f.read()).hexdigest()[:16], "source": a.build_info,
                      "store": "sqlite", "profile": "release"})
    if a.experiment_sql:
        BUILD["experiment_sql"] = a.experiment_sql
    ctx = Ctx(a)
    os.makedirs(a.work, exist_ok=True)
    only = [s.strip() for s in a.only.split(",") if s.strip()]
    scenarios = {"drain": scenario_drain, "limits": scenario_drain, "cpu_split": scenario_drain,
                 "latency": scenario_latency, "load": scenario_load, "growth": scenario_growth,
                 "cluster": lambda c: C.scenario_cluster(
                     c, lambda o: emit({**o, "build": {**BUILD, "store": "postgres"}}))}
    done = set()
    for name in only:
        fn = scenarios[name]
        if fn in done:
            continue
        done.add(fn)
        B.log(f"== {name}")
        fn(ctx)


if __name__ == "__main__":
    main()
