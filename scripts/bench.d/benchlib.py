"""Shared pieces of casegate's benchmarks (scripts/bench, scripts/bench-intake).

Run with Debian's /usr/bin/python3 (standard library only). Nothing here is a test:
it drives the real binary against the private servers of scripts/testenv.

- mail generation: new-case mails from entitled customers, mixed English/Japanese
  (ISO-2022-JP, UTF-8 and Shift_JIS), every 10th with a 1 MiB attachment; every mail has
  its own sender address, so every acknowledgement lands in its own folder of the sink
  and the per-sender auto-reply limit never drops one;
- a contracts CSV that entitles every sender (by domain);
- delivery into a Dovecot user's INBOX over LMTP, several connections in parallel;
- running casegate with its peak RSS (wait4 rusage) and the time each stdout line
  appeared (`run --once` prints one line per phase);
- reading the SQLite store and the SMTP sink to check that every mail became exactly
  one case and got exactly one acknowledgement.
"""

import base64
import imaplib
import json
import os
import random
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.header import Header

ATTACHMENT_BYTES = 1024 * 1024
N_DOMAINS = 50  # per language
SUPPORT = "support@example.com"


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def now_ns():
    """CLOCK_MONOTONIC in ns: the clock the SMTP sink names its files by."""
    return time.monotonic_ns()


# ------------------------------------------------------------------ environment


def load_env(servers_dir):
    env = {}
    with open(os.path.join(servers_dir, "env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k:
                env[k] = v
    return env


# ------------------------------------------------------------------ mails


def en_domain(k):
    return f"globex{k}-corp.com"


def ja_domain(k):
    return f"acme{k}.co.jp"


EN_COUNTRIES = ["US", "DE", "AU", "GB", "CA", "SG"]


def contracts_csv(path):
    """Every sender domain the generator uses, entitled for both products."""
    rows = ["account,contract_id,tier,products,domains,contacts,country,start,end"]
    for k in range(N_DOMAINS):
        tier = "premium" if k % 3 == 0 else "standard"
        rows.append(f"Globex {k} Inc,B-EN-{k:03d},{tier},ansible;satellite,{en_domain(k)},,"
                    f"{EN_COUNTRIES[k % len(EN_COUNTRIES)]},2025-01-01,2030-12-31")
        rows.append(f"ACME {k} KK,B-JA-{k:03d},{tier},ansible;satellite,{ja_domain(k)},,JP,2025-01-01,2030-12-31")
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")


_ATTACHMENT_B64 = None


def attachment_b64():
    """1 MiB of incompressible bytes, base64 in 76-column lines (generated once)."""
    global _ATTACHMENT_B64
    if _ATTACHMENT_B64 is None:
        data = random.Random(7).randbytes(ATTACHMENT_BYTES)
        b64 = base64.b64encode(data)
        _ATTACHMENT_B64 = b"\r\n".join(b64[i:i + 76] for i in range(0, len(b64), 76)) + b"\r\n"
    return _ATTACHMENT_B64


EN_BODIES = [
    ("Playbook fails on host {i}",
     "Hello,\r\n\r\nsince this morning the nightly playbook fails at the inventory sync step on host web{i}.\r\n"
     "We did not change the inventory. The job log says:\r\n\r\n"
     "  ERROR! Unexpected Exception, this is probably a bug: 'NoneType' object has no attribute 'get'\r\n"
     "  the full traceback was: ... ansible-playbook 2.16.3\r\n\r\n"
     "Could you please help us find the cause? Production deploys are blocked.\r\n\r\nBest regards,\r\n{name}\r\n"),
    ("Capsule sync stuck at 50% ({i})",
     "Hi support,\r\n\r\nour Satellite capsule cap{i} has been stuck syncing the content view for six hours.\r\n"
     "pulp workers show no errors, foreman-maintain health check passes.\r\n\r\n"
     "Thanks,\r\n{name}\r\n"),
]

JA_BODIES = [
    ("ジョブが失敗します ({i})",
     "お世話になっております。\nジョブテンプレートの実行が失敗します。プレイブックは変更していません。\n"
     "  fatal: [web{i}]: UNREACHABLE! => {{\"msg\": \"timed out\"}}\n"
     "原因の調査をお願いできますでしょうか。\nよろしくお願いいたします。\n{name}\n"),
    ("サテライトの同期が終わりません ({i})",
     "いつもお世話になっております。\nサテライトのコンテンツビューの同期が50%で止まったままです。\n"
     "カプセル cap{i} のログを添付します。\nご確認のほど、よろしくお願いいたします。\n{name}\n"),
]


def sender_of(run, i):
    lang = "ja" if i % 2 else "en"
    k = (i // 2) % N_DOMAINS
    domain = ja_domain(k) if lang == "ja" else en_domain(k)
    return f"u{run}-{i}@{domain}", lang


# Every ATTACH_EVERY-th mail carries a 1 MiB attachment; 0: text mail only. The drain
# runs once per mix (`--drain-mixes`), so the scenario sets it with `set_mix`.
ATTACH_EVERY = 10
MIXES = {"attachments": 10, "text": 0}


def set_mix(name):
    global ATTACH_EVERY
    ATTACH_EVERY = MIXES[name]


def has_attachment(i):
    return ATTACH_EVERY > 0 and i % ATTACH_EVERY == ATTACH_EVERY // 2


def message_id(run, i):
    return f"bench-{run}-{i}@bench.invalid"


def make_mail(run, i):
    """Mail number i of run `run` (raw bytes, CRLF)."""
    sender, lang = sender_of(run, i)
    mid = message_id(run, i)
    if lang == "en":
        subj_t, body_t = EN_BODIES[(i // 2) % len(EN_BODIES)]
        subject = subj_t.format(i=i)
        name = f"Ops {i}"
        body = body_t.format(i=i, name=name).encode("utf-8")
        text_headers = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        subject_h = subject
        from_h = f"{name} <{sender}>"
    else:
        subj_t, body_t = JA_BODIES[(i // 2) % len(JA_BODIES)]
        subject = subj_t.format(i=i)
        name = f"山田 {i}"
        text = body_t.format(i=i, name=name)
        charset = ["iso-2022-jp", "utf-8", "shift_jis"][(i // 2) % 3]
        codec = {"iso-2022-jp": "iso2022_jp", "utf-8": "utf-8", "shift_jis": "shift_jis"}[charset]
        body = text.encode(codec).replace(b"\n", b"\r\n")
        cte = "7bit" if charset == "iso-2022-jp" else "8bit"
        text_headers = f"Content-Type: text/plain; charset={charset.upper()}\r\nContent-Transfer-Encoding: {cte}\r\n".encode()
        subject_h = Header(subject, charset).encode()
        from_h = f"{Header(name, charset).encode()} <{sender}>"
    head = (f"From: {from_h}\r\nTo: {SUPPORT}\r\nSubject: {subject_h}\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n"
            f"Message-ID: <{mid}>\r\nMIME-Version: 1.0\r\n").encode()
    if not has_attachment(i):
        return head + text_headers + b"\r\n" + body
    boundary = f"=_bench_{run}_{i}".encode()
    return (head + b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n\r\n"
            + b"--" + boundary + b"\r\n" + text_headers + b"\r\n" + body + b"\r\n"
            + b"--" + boundary + b"\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Disposition: attachment; filename=\"sosreport-{i}.tar.xz\"\r\n".encode()
            + b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment_b64()
            + b"--" + boundary + b"--\r\n")


# ------------------------------------------------------------------ delivery


def lmtp_deliver(env, user, run, indices, connections=4):
    """Deliver mails `indices` into `user`'s INBOX over LMTP, `connections` in parallel.
    Returns the seconds it took."""
    port = int(env["CASEGATE_TEST_LMTP_PORT"])
    chunks = [indices[c::connections] for c in range(connections)]

    def work(chunk):
        lmtp = smtplib.LMTP("127.0.0.1", port)
        try:
            for i in chunk:
                sender, _ = sender_of(run, i)
                refused = lmtp.sendmail(sender, [user], make_mail(run, i))
                if refused:
                    raise RuntimeError(f"LMTP refused mail {i}: {refused}")
        finally:
            try:
                lmtp.quit()
            except Exception:
                pass
        return len(chunk)

    t0 = time.monotonic()
    with ThreadPoolExecutor(connections) as ex:
        done = sum(ex.map(work, [c for c in chunks if c]))
    assert done == len(indices), (done, len(indices))
    return time.monotonic() - t0


def imap_login(env, user):
    imap = imaplib.IMAP4("127.0.0.1", int(env["CASEGATE_TEST_IMAP_PORT"]))
    imap.login(user, env["CASEGATE_TEST_PASSWORD"])
    return imap


def mailbox_count(env, user, mailbox):
    imap = imap_login(env, user)
    try:
        typ, data = imap.status(mailbox, "(MESSAGES)")
        if typ != "OK":
            return 0
        return int(data[0].decode().rsplit("MESSAGES", 1)[1].strip(" )"))
    finally:
        imap.logout()


# ------------------------------------------------------------------ casegate


def write_config(path, env, repo, db, user=None, smtp=True, imap=True, log_level="info", extra=""):
    parts = [f"""[gateway]
support_address = "{SUPPORT}"
support_name = "Bench Support"
routing_file = "{repo}/config/routing.toml"
templates_dir = "{repo}/templates"
"""]
    if imap:
        parts.append(f"""[imap]
host = "127.0.0.1"
port = {env["CASEGATE_TEST_IMAP_PORT"]}
tls = "none"
username = "{user}"
password = "{env["CASEGATE_TEST_PASSWORD"]}"
""")
    if smtp:
        parts.append(f"""[smtp]
host = "127.0.0.1"
port = {env["CASEGATE_TEST_SMTP_PORT"]}
tls = "none"
""")
    parts.append(f"""[database]
url = "sqlite://{db}"
[log]
level = "{log_level}"
""")
    if "[admin]" not in extra:
        # No admin listener: a fixed port would clash with another daemon (a test run).
        parts.append("[admin]\nlisten = \"\"\n")
    parts.append(extra)
    with open(path, "w") as f:
        f.write("\n".join(parts))


def casegate(bin_path, config, *args, check=True):
    """Run a short casegate command; returns stdout."""
    p = subprocess.run([bin_path, "--config", config, *args], capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError(f"casegate {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout


class Timed:
    """A casegate process whose stdout lines are time-stamped as they appear, run under
    /usr/bin/time for its peak RSS (the kernel's high-water mark of the casegate process
    itself: wait4's ru_maxrss here would include this Python process, which the child
    inherits at fork) and its CPU time (user and system seconds, getrusage of the
    casegate process alone, 10 ms resolution)."""

    def __init__(self, argv, stderr_path, env=None):
        self.rss_file = stderr_path + ".rss"
        self.t0 = time.monotonic()
        self.t0_ns = now_ns()
        self.stderr = open(stderr_path, "wb")
        self.proc = subprocess.Popen(["/usr/bin/time", "-f", "%M %U %S", "-o", self.rss_file, *argv],
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.lines = []  # (seconds since start, text)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.rc = None
        self.maxrss_kb = None
        self.cpu_user = self.cpu_system = None
        self.seconds = None

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append((time.monotonic() - self.t0, raw.decode("utf-8", "replace").rstrip("\n")))

    def pid(self):
        """casegate's own pid (the child of /usr/bin/time)."""
        for _ in range(200):
            try:
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                    kids = f.read().split()
                if kids:
                    return int(kids[0])
            except FileNotFoundError:
                return None
            time.sleep(0.01)
        return None

    def signal(self, sig):
        pid = self.pid()
        if pid:
            os.kill(pid, sig)

    def wait(self, timeout=None):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(9)
            self.proc.wait()
            raise TimeoutError(f"casegate took longer than {timeout} s and was killed")
        self.seconds = time.monotonic() - self.t0
        self.rc = self.proc.returncode
        self.reader.join(5)
        self.stderr.close()
        try:
            with open(self.rss_file) as f:
                # The last line: a killed process makes time(1) write a note first.
                rss, user, system = f.read().strip().splitlines()[-1].split()[-3:]
            self.maxrss_kb = int(rss)
            self.cpu_user, self.cpu_system = float(user), float(system)
        except (OSError, ValueError, IndexError):
            self.maxrss_kb = None
        return self.rc

    def cpu_seconds(self):
        """User + system CPU seconds of casegate (None until it exited)."""
        if self.cpu_user is None:
            return None
        return self.cpu_user + self.cpu_system

    def line_time(self, prefix):
        for t, text in self.lines:
            if text.startswith(prefix):
                return t, text
        return None, None


# ------------------------------------------------------------------ checks


def db_connect(db):
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def check_run(db, run, indices, sink_dir):
    """Every mail of the run is exactly one case with one acknowledgement, sent once and
    received once by the sink. Returns a dict of facts and `ok`."""
    conn = db_connect(db)
    like = f"bench-{run}-%"
    msgs, distinct_mids, distinct_cases = conn.execute(
        "SELECT COUNT(*), COUNT(DISTINCT message_id), COUNT(DISTINCT case_id) FROM messages "
        "WHERE direction = 'in' AND message_id LIKE ?", (like,)).fetchone()
    # Cases holding one of these mails must hold exactly one inbound message.
    multi = conn.execute(
        "SELECT COUNT(*) FROM (SELECT case_id FROM messages WHERE direction = 'in' AND case_id IN "
        "(SELECT case_id FROM messages WHERE message_id LIKE ?) GROUP BY case_id HAVING COUNT(*) > 1)",
        (like,)).fetchone()[0]
    acks = dict(conn.execute(
        "SELECT o.status, COUNT(*) FROM outbox o WHERE o.kind = 'acknowledgement' AND o.case_id IN "
        "(SELECT case_id FROM messages WHERE message_id LIKE ?) GROUP BY o.status", (like,)).fetchall())
    other_mail = conn.execute(
        "SELECT COUNT(*) FROM outbox o WHERE o.kind <> 'acknowledgement' AND o.case_id IN "
        "(SELECT case_id FROM messages WHERE message_id LIKE ?)", (like,)).fetchone()[0]
    entitled = conn.execute(
        "SELECT COUNT(*) FROM cases WHERE entitlement = 'entitled' AND id IN "
        "(SELECT case_id FROM messages WHERE message_id LIKE ?)", (like,)).fetchone()[0]
    conn.close()
    sink_counts = sink_ack_files(sink_dir, run, indices)
    n = len(indices)
    per_rcpt = [len(v) for v in sink_counts.values()]
    facts = {
        "mails": n,
        "cases": distinct_cases,
        "inbound_messages": msgs,
        "distinct_message_ids": distinct_mids,
        "cases_with_more_than_one_mail": multi,
        "entitled_cases": entitled,
        "acks_sent_in_store": acks.get("sent", 0),
        "acks_not_sent_in_store": sum(v for k, v in acks.items() if k != "sent"),
        "other_outbound_mail": other_mail,
        "acks_received_by_sink": sum(per_rcpt),
        "recipients_with_exactly_one_ack": sum(1 for c in per_rcpt if c == 1),
    }
    facts["ok"] = (msgs == n and distinct_mids == n and distinct_cases == n and multi == 0
                   and entitled == n and acks.get("sent", 0) == n and facts["acks_not_sent_in_store"] == 0
                   and facts["recipients_with_exactly_one_ack"] == n and sum(per_rcpt) == n)
    return facts


def sink_ack_files(sink_dir, run, indices):
    """{index: [monotonic ns of each .eml the sink stored for that mail's sender]}"""
    out = {}
    for i in indices:
        sender, _ = sender_of(run, i)
        d = os.path.join(sink_dir, sender.lower())
        try:
            names = [n for n in os.listdir(d) if n.endswith(".eml") and not n.startswith(".")]
        except FileNotFoundError:
            names = []
        out[i] = sorted(int(n.split("-", 1)[0]) for n in names)
    return out


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def cores():
    return os.cpu_count()
