"""Sum sqlx's statement log (CASEGATE_LOG="info,sqlx::query=debug") by statement:
count, total and mean elapsed time. Usage: sqlstats.py STDERR_LOG"""
import re
import sys
from collections import defaultdict

ansi = re.compile(r"\x1b\[[0-9;]*m")
pat = re.compile(r'summary="(.*?)" .*elapsed_secs=([0-9.e+-]+)')
agg = defaultdict(lambda: [0, 0.0])
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        if "sqlx::query" not in line:
            continue
        m = pat.search(ansi.sub("", line))
        if m:
            a = agg[m.group(1)[:70]]
            a[0] += 1
            a[1] += float(m.group(2))
total = sum(v[1] for v in agg.values())
print(f"{'statement':72} {'count':>7} {'total s':>8} {'mean ms':>8} {'share':>6}")
for k, (n, t) in sorted(agg.items(), key=lambda kv: -kv[1][1])[:25]:
    print(f"{k:72} {n:7d} {t:8.3f} {t / n * 1000:8.3f} {t / total:6.1%}")
print(f"{'TOTAL':72} {sum(v[0] for v in agg.values()):7d} {total:8.3f}")
