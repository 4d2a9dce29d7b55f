"""The `cluster` scenario of scripts/bench (issue 15): 1, 2 and 3 `casegate run`
instances over 3 mailboxes on one PostgreSQL database.

For each instance count: a fresh database, the same mails delivered into three Dovecot
users (the three mailboxes: `[imap]` and two `[[mailboxes]]` entries), then the
instances are started together. Measured: cases/s (first to last case commit, and
from the start to the last), acknowledgements/s (start to the last one sent), and with
two or three instances the takeover time after `kill -9` of the holder of one mailbox
(from the kill to another instance's lease). Checked: every mail one case with one
acknowledgement (`correct`). PostgreSQL is reached with `psql` (the server URL from
$CASEGATE_BENCH_PG, default the test server postgres://postgres@127.0.0.1:5432/test).
"""

import os
import shutil
import signal
import subprocess
import time

import benchlib as B


def pg_admin():
    return os.environ.get("CASEGATE_BENCH_PG", "postgres://postgres@127.0.0.1:5432/test")


def psql(url, sql):
    p = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-tAqc", sql], capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"psql: {sql}: {p.stderr}")
    return p.stdout.strip()


def scalar(url, sql):
    out = psql(url, sql)
    return int(out) if out else 0


def config_text(ctx, url, users, takeover_ms):
    env = ctx.env
    first, rest = users[0], users[1:]
    boxes = "".join(f"""
[[mailboxes]]
name = "m{k + 1}"
support_address = "support-m{k + 1}@example.com"
host = "127.0.0.1"
port = {env["CASEGATE_TEST_IMAP_PORT"]}
tls = "none"
username = "{u}"
password = "{env["CASEGATE_TEST_PASSWORD"]}"
""" for k, u in enumerate(rest))
    return f"""[gateway]
support_address = "{B.SUPPORT}"
support_name = "Bench Support"
routing_file = "{ctx.assets}/config/routing.toml"
templates_dir = "{ctx.assets}/templates"
[imap]
host = "127.0.0.1"
port = {env["CASEGATE_TEST_IMAP_PORT"]}
tls = "none"
username = "{first}"
password = "{env["CASEGATE_TEST_PASSWORD"]}"
[smtp]
host = "127.0.0.1"
port = {env["CASEGATE_TEST_SMTP_PORT"]}
tls = "none"
[database]
url = "{url}"
[cluster]
takeover_ms = {takeover_ms}
[admin]
listen = ""
[log]
level = "info"
{boxes}"""


def holder(url, mailbox):
    now = int(time.time() * 1000)
    return psql(url, f"SELECT holder FROM mailbox_leases WHERE mailbox = '{mailbox}' "
                     f"AND holder IS NOT NULL AND expires_at > {now}") or None


def one_run(ctx, instances, n, takeover_ms):
    a = ctx.args
    run = f"c{ctx.stamp}i{instances}"
    runs = [f"{run}m{k}" for k in range(3)]
    users = [f"bench-{r}" for r in runs]
    d = ctx.fresh_dir(f"cluster-{instances}")
    admin = pg_admin()
    dbname = f"casegate_bench_{run}"
    psql(admin, f"DROP DATABASE IF EXISTS {dbname}")
    psql(admin, f"CREATE DATABASE {dbname}")
    url = admin.rsplit("/", 1)[0] + "/" + dbname
    cfg = os.path.join(d, "casegate.toml")
    with open(cfg, "w") as f:
        f.write(config_text(ctx, url, users, takeover_ms))
    csv = os.path.join(d, "contracts.csv")
    B.contracts_csv(csv)
    B.casegate(ctx.bin, cfg, "contracts", "import", csv)
    indices = list(range(n))
    for r, u in zip(runs, users):
        B.lmtp_deliver(ctx.env, u, r, indices, a.lmtp_connections)
    os.sync()
    total = 3 * n
    B.log(f"cluster: {instances} instance(s), {total} mails in 3 mailboxes")
    t0 = time.monotonic()
    t0_ms = int(time.time() * 1000)
    procs = [subprocess.Popen([ctx.bin, "--config", cfg, "run"], stdout=subprocess.DEVNULL,
                              stderr=open(os.path.join(d, f"instance-{k}.log"), "wb"))
             for k in range(instances)]
    t_cases = t_acks = None
    deadline = t0 + a.timeout
    try:
        while time.monotonic() < deadline:
            cases = scalar(url, "SELECT COUNT(*) FROM cases")
            if t_cases is None and cases >= total:
                t_cases = time.monotonic() - t0
            sent = scalar(url, "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement' AND status = 'sent'")
            if sent >= total:
                t_acks = time.monotonic() - t0
                break
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"an instance exited; see {d}/instance-*.log")
            time.sleep(0.1)
        if t_acks is None:
            raise TimeoutError(f"not done within {a.timeout} s")
        lo, hi = psql(url, "SELECT MIN(created_at) || ' ' || MAX(created_at) FROM cases").split()
        spread = psql(url, "SELECT string_agg(n::text, ',' ORDER BY n DESC) FROM "
                           "(SELECT COUNT(*) n FROM mailbox_leases WHERE holder IS NOT NULL GROUP BY holder) x")
        takeover = None
        if instances > 1:
            # kill -9 the holder of the first mailbox; time until another holds it.
            name = holder(url, "INBOX")
            victim = next(p for p in procs if name and name.endswith(f"-{p.pid}"))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            killed = time.monotonic()
            while time.monotonic() < killed + 10 * takeover_ms / 1000:
                h = holder(url, "INBOX")
                if h and h != name:
                    takeover = round(time.monotonic() - killed, 2)
                    break
                time.sleep(0.05)
        check = {
            "cases": scalar(url, "SELECT COUNT(*) FROM cases"),
            "inbound_messages": scalar(url, "SELECT COUNT(*) FROM messages WHERE direction = 'in'"),
            "distinct_message_ids": scalar(url, "SELECT COUNT(DISTINCT message_id) FROM messages WHERE direction = 'in'"),
            "acks_sent": scalar(url, "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement' AND status = 'sent'"),
            "acks_in_store": scalar(url, "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'"),
        }
        at_sink = [len(v) for r in runs for v in B.sink_ack_files(ctx.sink, r, indices).values()]
        check["senders_with_exactly_one_ack_at_sink"] = sum(1 for c in at_sink if c == 1)
        check["ok"] = (all(check[k] == total for k in ("cases", "inbound_messages", "distinct_message_ids",
                                                         "acks_sent", "acks_in_store"))
                       and check["senders_with_exactly_one_ack_at_sink"] == total)
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    result = {
        "instances": instances,
        "cases_per_second": round(total / t_cases, 1),
        "cases_per_second_first_to_last_commit": round((total - 1) / ((int(hi) - int(lo)) / 1000), 1)
        if int(hi) > int(lo) else None,
        "acks_per_second": round(total / t_acks, 1),
        "seconds_to_last_case": round(t_cases, 2),
        "seconds_to_last_ack": round(t_acks, 2),
        "first_case_after_start_seconds": round((int(lo) - t0_ms) / 1000, 2),
        "leases_per_holder_after_drain": spread,
        "takeover_seconds_after_kill_9": takeover,
        "correct": check["ok"],
        "checks": check,
    }
    if not a.keep:
        for u in users:
            shutil.rmtree(os.path.join(ctx.env["CASEGATE_TEST_MAIL_DIR"], u.lower()), ignore_errors=True)
        for r in runs:
            for i in indices:
                shutil.rmtree(os.path.join(ctx.sink, B.sender_of(r, i)[0].lower()), ignore_errors=True)
        psql(admin, f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
    return result


def scenario_cluster(ctx, emit):
    a = ctx.args
    n = a.cluster_mails
    results = [one_run(ctx, k, n, a.cluster_takeover_ms) for k in (1, 2, 3)]
    base = results[0]["cases_per_second"]
    emit({
        "scenario": "cluster",
        "cores": B.cores(),
        "store": "postgres",
        "mailboxes": 3,
        "mails_per_mailbox": n,
        "takeover_ms": a.cluster_takeover_ms,
        "runs": results,
        "cases_per_second_vs_one_instance": [round(r["cases_per_second"] / base, 2) for r in results],
        "correct": all(r["correct"] for r in results),
    })
