#!/usr/bin/env python3
"""Says, scenario by scenario, whether the simulator's results meet the
adaptation targets T1-T3, computed from the results CSV.

Usage: check_targets.py RESULTS.csv REFERENCE.csv
  RESULTS.csv    written by adaptation-sim --results
  REFERENCE.csv  reference/jetkvm.csv: JetKVM's step before the demand floor

T1 (leaky=no, live source): adaptive loses no more than queue-defaults and
   its p99 is at most queue-defaults' p99 + 0.5 ms.
T2 (leaky=downstream, live source): no fixed queue (fixed-2 to fixed-128 in
   either leaky mode, or queue-defaults) loses no more and has a lower mean
   latency; on scenarios whose jitter changes over time (CHANGING), the mean
   latency is at most 0.7 x that of the smallest fixed queue that loses no
   more (queue-defaults counting as 200 buffers).
T3 (non-live source, both leaky modes): the mean level while memory is above
   mem-high-threshold is at most min-buffers + 2, the consumer never waits
   for data, and adaptive delivers at least as many frames as fixed-32.
Besides: demand-headroom 0 (the jetkvm rows) reproduces REFERENCE.csv.

Prints one line per target and scenario; exits 0 when all are met, 1 when
any is not, 2 when a row it needs is missing.
"""

import csv
import sys

CHANGING = ("rtp-wifi", "rtp-regimes")
RATIO = 0.7
P99_SLACK_MS = 0.5


def read(path):
    with open(path, newline="", encoding="ascii") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


class Results:
    def __init__(self, rows):
        self.rows = rows
        self.scenarios = list(dict.fromkeys(r["scenario"] for r in rows))

    def get(self, scenario, queue, leaky):
        for r in self.rows:
            if (r["scenario"], r["queue"], r["leaky"]) == (scenario, queue, leaky):
                return r
        raise LookupError("no row for %s, %s, leaky=%s" % (scenario, queue, leaky))

    def fixed(self, scenario):
        """fixed-N in both leaky modes and queue-defaults, smallest first."""
        rows = [r for r in self.rows if r["scenario"] == scenario
                and (r["queue"].startswith("fixed-") or r["queue"] == "queue-defaults")]
        return sorted(rows, key=lambda r: (int(r["start_capacity"]), num(r, "latency_mean_ms")))

    def live(self, scenario):
        return self.get(scenario, "adaptive", "no")["source"] == "live"


def num(row, col):
    return float(row[col])


def name(row):
    return "%s leaky=%s" % (row["queue"], row["leaky"])


def report(met, target, scenario, text):
    print("  %-8s %s %-12s %s" % ("met" if met else "NOT MET", target, scenario, text))
    return met


def t1(res, s):
    a = res.get(s, "adaptive", "no")
    q = res.get(s, "queue-defaults", "no")
    met = (num(a, "lost") <= num(q, "lost")
           and num(a, "latency_p99_ms") <= num(q, "latency_p99_ms") + P99_SLACK_MS)
    return report(met, "T1", s, "lost %s, p99 %.1f ms; queue-defaults: lost %s, p99 %.1f ms"
                  % (a["lost"], num(a, "latency_p99_ms"), q["lost"], num(q, "latency_p99_ms")))


def t2(res, s):
    a = res.get(s, "adaptive", "downstream")
    lost, mean = num(a, "lost"), num(a, "latency_mean_ms")
    rivals = [r for r in res.fixed(s) if num(r, "lost") <= lost]
    better = [r for r in rivals if num(r, "latency_mean_ms") < mean]
    text = "lost %s, mean %.1f ms" % (a["lost"], mean)
    if better:
        b = min(better, key=lambda r: num(r, "latency_mean_ms"))
        text += "; %s loses %s at %.1f ms" % (name(b), b["lost"], num(b, "latency_mean_ms"))
    else:
        text += "; no fixed queue loses no more at a lower mean"
    met = not better
    if s in CHANGING:
        if rivals:
            r = rivals[0]
            bound = RATIO * num(r, "latency_mean_ms")
            met &= mean <= bound
            text += "; <= %.1f x %s's %.1f = %.1f ms" % (RATIO, name(r), num(r, "latency_mean_ms"),
                                                         bound)
        else:
            met = False
            text += "; no fixed queue loses no more"
    return report(met, "T2", s, text)


def t3(res, s):
    ok = True
    for leaky in ("no", "downstream"):
        a = res.get(s, "adaptive", leaky)
        f = res.get(s, "fixed-32", leaky)
        limit = int(a["min_buffers"]) + 2
        level = num(a, "level_mean_mem_high")
        met = (0 <= level <= limit and num(a, "underruns") == 0
               and num(a, "delivered") >= num(f, "delivered"))
        ok &= report(met, "T3", s, "leaky=%s: level under memory pressure %.1f <= %d (fixed-32: %.1f); "
                     "consumer waited %s times; delivered %s (fixed-32: %s)"
                     % (leaky, level, limit, num(f, "level_mean_mem_high"), a["underruns"],
                        a["delivered"], f["delivered"]))
    return ok


def jetkvm(res, reference):
    ok = True
    for leaky in ("no", "downstream"):
        refs = [r for r in reference if r["leaky"] == leaky and r["scenario"] in res.scenarios]
        diffs = []
        for ref in refs:
            row = res.get(ref["scenario"], "jetkvm", leaky)
            for col, value in ref.items():
                if col != "queue" and row.get(col) != value:
                    diffs.append("%s %s: %s, was %s" % (ref["scenario"], col, row.get(col), value))
        columns = len(refs[0]) - 1 if refs else 0
        ok &= report(bool(refs) and not diffs, "--", "jetkvm",
                     "demand-headroom 0, leaky=%s: the %d reference rows of JetKVM's step unchanged in "
                     "all %d columns%s" % (leaky, len(refs), columns,
                                          "".join("\n             " + d for d in diffs)))
    return ok


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    res = Results(read(sys.argv[1]))
    print("targets:")
    try:
        ok = True
        for s in res.scenarios:
            if res.live(s):
                ok &= t1(res, s)
                ok &= t2(res, s)
            else:
                ok &= t3(res, s)
        ok &= jetkvm(res, read(sys.argv[2]))
    except LookupError as e:
        print("  cannot check: %s" % e)
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
