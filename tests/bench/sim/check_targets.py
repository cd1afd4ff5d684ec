#!/usr/bin/env python3
"""Says, target by target, whether the simulator's results meet the
adaptation targets, computed from the results CSV.

Usage: check_targets.py RESULTS.csv REFERENCE.csv
  RESULTS.csv    written by adaptation-sim --results
  REFERENCE.csv  reference/jetkvm.csv: JetKVM's step before the demand floor

Prints one line per target and leaky mode; exits 0 when all are met, 1 when
any is not, 2 when a row it needs is missing.
"""

import csv
import sys

LEAKY = ("no", "downstream")
ZERO_LOSS = ("idle", "cpu-burst", "memory", "stalls", "mixed", "rtp-jitter")


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

    def fixed(self, scenario, leaky=None):
        return [r for r in self.rows if r["scenario"] == scenario and r["queue"].startswith("fixed-")
                and (leaky is None or r["leaky"] == leaky)]


def num(row, col):
    return float(row[col])


def report(met, text):
    print("  %-8s %s" % ("met" if met else "NOT MET", text))
    return met


def check(res, reference):
    ok = True
    present = [s for s in res.scenarios]

    for leaky in LEAKY:
        misses = []
        cap = None
        for s in present:
            a = res.get(s, "adaptive", leaky)
            cap = int(a["max_buffers"])
            f = res.get(s, "fixed-%d" % cap, leaky)
            if not (num(a, "lost") <= num(f, "lost") and num(a, "latency_p99_ms") <= num(f, "latency_p99_ms")):
                misses.append("%s: lost %s, p99 %s ms against %s's %s, %s ms"
                              % (s, a["lost"], a["latency_p99_ms"], f["queue"], f["lost"], f["latency_p99_ms"]))
        ok &= report(not misses, "every scenario (%d), leaky=%s: lost <= fixed-%s's (max-buffers) and p99 <= its p99%s"
                     % (len(present), leaky, cap, "".join("\n             " + m for m in misses)))

    for leaky in LEAKY:
        want = [s for s in ZERO_LOSS if s in present]
        lossy = ["%s lost %s" % (s, res.get(s, "adaptive", leaky)["lost"]) for s in want
                 if num(res.get(s, "adaptive", leaky), "lost") != 0]
        ok &= report(not lossy, "%s, leaky=%s: 0 lost%s" % (", ".join(want), leaky,
                                                           (": " + "; ".join(lossy)) if lossy else ""))

    if "transcode" in present:
        for leaky in LEAKY:
            a = res.get("transcode", "adaptive", leaky)
            f = res.get("transcode", "fixed-%d" % int(a["max_buffers"]), leaky)
            limit = int(a["min_buffers"]) + 2
            level = num(a, "level_mean_mem_high")
            ok &= report(0 <= level <= limit and num(a, "underruns") == 0,
                         "transcode, leaky=%s: mean level under memory pressure %.1f <= min-buffers + 2 = %d"
                         " (%s: %.1f); consumer waited %s times"
                         % (leaky, level, limit, f["queue"], num(f, "level_mean_mem_high"), a["underruns"]))

    if "rtp-jitter" in present:
        for leaky in LEAKY:
            a = res.get("rtp-jitter", "adaptive", leaky)
            zero = sorted((r for r in res.fixed("rtp-jitter", leaky) if num(r, "lost") == 0),
                          key=lambda r: int(r["queue"].split("-")[1]))
            if not zero:
                ok &= report(False, "rtp-jitter, leaky=%s: no fixed queue loses nothing" % leaky)
                continue
            ok &= report(num(a, "underruns") <= num(zero[0], "underruns"),
                         "rtp-jitter, leaky=%s: underruns %s <= %s's %s (the smallest fixed queue with 0 lost)"
                         % (leaky, a["underruns"], zero[0]["queue"], zero[0]["underruns"]))

    for leaky in LEAKY:
        refs = [r for r in reference if r["leaky"] == leaky and r["scenario"] in present]
        diffs = []
        for ref in refs:
            row = res.get(ref["scenario"], "jetkvm", leaky)
            for col, value in ref.items():
                if col != "queue" and row.get(col) != value:
                    diffs.append("%s %s: %s, was %s" % (ref["scenario"], col, row.get(col), value))
        columns = len(refs[0]) - 1 if refs else 0
        ok &= report(refs and not diffs,
                     "demand-headroom 0, leaky=%s: the %d reference rows of JetKVM's step unchanged in all %d columns%s"
                     % (leaky, len(refs), columns, "".join("\n             " + d for d in diffs)))

    if "rtp-wifi" in present:
        t = res.get("rtp-wifi", "adapt-trim", "downstream")
        rivals = [r for r in res.fixed("rtp-wifi") if num(r, "lost") <= num(t, "lost")]
        beaten = [r for r in rivals if not num(t, "latency_mean_ms") < num(r, "latency_mean_ms")]
        best = min(rivals, key=lambda r: num(r, "latency_mean_ms")) if rivals else None
        ok &= report(bool(rivals) and not beaten,
                     "rtp-wifi, leaky=downstream, trim-period %g s: mean latency %.1f ms (lost %s) below every "
                     "fixed queue with as few losses (%d; the lowest: %s leaky=%s, %.1f ms, lost %s)"
                     % (num(t, "trim_period_s"), num(t, "latency_mean_ms"), t["lost"], len(rivals),
                        best["queue"] if best else "-", best["leaky"] if best else "-",
                        num(best, "latency_mean_ms") if best else 0.0, best["lost"] if best else "-"))
    return ok


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    res = Results(read(sys.argv[1]))
    print("targets:")
    try:
        return 0 if check(res, read(sys.argv[2])) else 1
    except LookupError as e:
        print("  cannot check: %s" % e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
