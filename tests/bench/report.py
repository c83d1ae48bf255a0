#!/usr/bin/env python3
"""Turn scripts/bench's raw measurements into one Markdown table.

    report.py RESULTS.tsv

Each input line is "scenario<TAB>contender<TAB>metric<TAB>value", one per
repetition (warm-ups are never written).  Rows keep the order in which
they first appear.  Each row shows the median and the spread (min-max) of
its values and, where issue 5 sets one, the target and PASS/FAIL, judged
on the median.  The metric "correct" holds 1 or 0 per repetition and
passes only when every repetition answered completely and correctly.

Targets are data (TARGETS below); a relative target (S1 against curl and
wrk) is a derived row computed from two medians.  Exits 1 when a target
fails.
"""
import collections
import fnmatch
import statistics
import sys

# scenario, contender, metric (fnmatch patterns), op, bound, shown as
TARGETS = [
    ("S1", "fanoutd", "x curl -Z", ">=", 1.5, ">= 1.5x"),
    ("S1", "fanoutd", "x wrk ceiling", ">=", 0.5, ">= 0.5x"),
    ("S2", "fanoutd", "overhead ms", "<=", 10, "<= 10 ms"),
    ("S3", "fanoutd", "req/s", ">=", 20000, ">= 20,000"),
    ("S3", "fanoutd", "p99 ms", "<", 10, "< 10 ms"),
    ("S4 100k", "*", "peak-idle B/URL", "<", 4096, "< 4096 B"),
    ("S4 100k", "fanoutd", "idle RSS MiB", "<", 8, "< 8 MiB"),
    ("S5", "fanoutd", "wall ms", "<", 2000, "< 2000 ms"),
    ("S5", "fanoutd", "peak RSS MiB", "<", 300, "< 300 MiB"),
    ("*", "*", "errors", "<=", 0, "0"),
]

# derived row: scenario, contender, metric, numerator, denominator
RATIOS = [
    ("S1", "fanoutd", "x curl -Z", ("S1", "fanoutd", "URLs/s"),
     ("S1", "curl -Z", "URLs/s")),
    ("S1", "fanoutd", "x wrk ceiling", ("S1", "fanoutd", "URLs/s"),
     ("S1", "wrk (ceiling)", "URLs/s")),
]

OPS = {">=": lambda v, b: v >= b, "<=": lambda v, b: v <= b,
       "<": lambda v, b: v < b, ">": lambda v, b: v > b}


def fmt(v):
    if v is None:
        return "—"
    a = abs(v)
    if v == int(v) and a < 1e6:
        return "{:,d}".format(int(v))
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def target_for(key):
    for s, c, m, op, bound, text in TARGETS:
        if (fnmatch.fnmatchcase(key[0], s) and fnmatch.fnmatchcase(key[1], c)
                and fnmatch.fnmatchcase(key[2], m)):
            return op, bound, text
    return None


def row(key, values):
    """One table line for key; returns (text, passed or None)."""
    scen, cont, metric = key
    if metric == "correct":
        good = sum(1 for v in values if v == 1)
        ok = good == len(values) and values
        return ("| %s | %s | answers complete and correct | %d/%d | | all "
                "| %s |" % (scen, cont, good, len(values),
                            "PASS" if ok else "FAIL"), bool(ok))
    med = statistics.median(values) if values else None
    spread = ""
    if len(values) > 1:
        spread = "%s–%s" % (fmt(min(values)), fmt(max(values)))
    t = target_for(key)
    verdict, passed, ttext = "", None, ""
    if t is not None:
        op, bound, ttext = t
        passed = med is not None and OPS[op](med, bound)
        verdict = "PASS" if passed else "FAIL"
    return ("| %s | %s | %s | %s | %s | %s | %s |"
            % (scen, cont, metric, fmt(med), spread, ttext, verdict), passed)


def main():
    data = collections.OrderedDict()
    with open(sys.argv[1]) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                continue
            key = tuple(parts[:3])
            try:
                value = float(parts[3])
            except ValueError:
                continue
            data.setdefault(key, []).append(value)

    derived = collections.defaultdict(list)
    for scen, cont, metric, num, den in RATIOS:
        if data.get(num) and data.get(den):
            d = statistics.median(data[den])
            if d > 0:
                derived[num].append(((scen, cont, metric),
                                     [statistics.median(data[num]) / d]))

    print("| scenario | contender | metric | median | spread (min–max) "
          "| target | result |")
    print("|---|---|---|---:|---:|---|---|")
    npass = nfail = 0
    for key, values in data.items():
        for k, v in [(key, values)] + derived.get(key, []):
            text, passed = row(k, v)
            print(text)
            if passed is True:
                npass += 1
            elif passed is False:
                nfail += 1
    print()
    print("Targets: %d passed, %d failed." % (npass, nfail))
    sys.exit(1 if nfail else 0)


if __name__ == "__main__":
    main()
