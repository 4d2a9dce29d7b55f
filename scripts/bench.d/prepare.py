"""Prepare a drain for profiling: a fresh store (contracts imported) and N bench mails in
a new Dovecot user's INBOX; prints the config path. Then run casegate under a profiler:

    scripts/testenv start --dir .bench/servers
    /usr/bin/python3 scripts/bench.d/prepare.py --mails 2000 --dir .bench/profile --bin BIN [--assets DIR]
    perf record -g BIN --config .bench/profile/casegate.toml run --once
"""
import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--mails", type=int, default=2000)
ap.add_argument("--dir", required=True)
ap.add_argument("--bin", required=True)
ap.add_argument("--assets", default=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ap.add_argument("--servers", default=".bench/servers")
ap.add_argument("--smtp", type=int, default=1)
ap.add_argument("--experiment-sql", default="")
ap.add_argument("--attachments", type=int, default=1, help="0: no 1 MiB attachments")
a = ap.parse_args()
env = B.load_env(a.servers)
d = os.path.abspath(a.dir)
shutil.rmtree(d, ignore_errors=True)
os.makedirs(d)
run = "p" + time.strftime("%H%M%S")
user = "bench-" + run
cfg, db = os.path.join(d, "casegate.toml"), os.path.join(d, "casegate.db")
B.write_config(cfg, env, a.assets, db, user=user, smtp=bool(a.smtp))
# Creates the store and applies the migrations (`cases list` refuses a missing file).
B.contracts_csv(os.path.join(d, "contracts.csv"))
B.casegate(a.bin, cfg, "contracts", "import", os.path.join(d, "contracts.csv"))
if a.experiment_sql:
    conn = B.db_connect(db)
    conn.executescript(a.experiment_sql)
    conn.close()
B.set_mix("attachments" if a.attachments else "text")
B.lmtp_deliver(env, user, run, list(range(a.mails)))
print(cfg)
