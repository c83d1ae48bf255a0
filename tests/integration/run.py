#!/usr/bin/env python3
"""Run the integration suite: python3 run.py [-k PATTERN]... [-v] [-t SECONDS]

Tests are the functions test_* of the modules test_*.py next to this file,
in file order, plus the SCENARIOS of a module (a list of dicts with a
"name", each run by the module's scenario() function: scenarios are data).
Each test runs with a hard timeout; one line per test:

    PASS name (0.12s)
    FAIL name: reason
    SKIP name: reason

and finally one line "N passed, N failed, N skipped".  Exit status 0 iff
nothing failed.  A test also fails when, after it, a daemon has died or
written a sanitizer report; a module fails at its end when its daemons
are not healthy or do not exit 0 on SIGTERM.
"""

import argparse
import importlib
import os
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # the source tree may be read-only

import harness  # noqa: E402

DEFAULT_TIMEOUT = 60.0
RUN_TIMEOUT = 1800.0


def discover(patterns):
    tests = []  # (module, name, callable, timeout)
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        modname = fname[:-3]
        mod = importlib.import_module(modname)
        for attr, obj in vars(mod).items():
            if attr.startswith("test_") and callable(obj):
                tests.append((modname, f"{modname}.{attr}", obj,
                              getattr(obj, "timeout", DEFAULT_TIMEOUT)))
        for s in getattr(mod, "SCENARIOS", []):
            tests.append((modname, f"{modname}.{s['name']}",
                          (lambda m, s: lambda: m.scenario(s))(mod, s),
                          s.get("timeout", DEFAULT_TIMEOUT)))
    if patterns:
        tests = [t for t in tests if any(p in t[1] for p in patterns)]
    return tests


def failure_reason(exc):
    """One line: the message, or the failing line of the test."""
    msg = str(exc).strip()
    if isinstance(exc, AssertionError) and msg:
        return " ".join(msg.split())
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for fr in reversed(frames):
        if os.path.dirname(os.path.abspath(fr.filename)) == HERE:
            where = f"{os.path.basename(fr.filename)}:{fr.lineno}: {fr.line} "
            break
    text = f"{type(exc).__name__}" + (f": {msg}" if msg else "")
    return " ".join((where + text).split())


def run_one(func, timeout):
    """Run func in a thread; ('pass'|'fail'|'skip', reason)."""
    outcome = {}

    def body():
        try:
            func()
            outcome["r"] = ("pass", None)
        except harness.Skip as e:
            outcome["r"] = ("skip", str(e))
        except BaseException as e:  # noqa: B902 - report everything
            outcome["r"] = ("fail", failure_reason(e))
            outcome["tb"] = traceback.format_exc()

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        harness.after_timeout()
        return ("fail", f"timed out after {timeout:.0f}s"), None
    return outcome["r"], outcome.get("tb")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", action="append", default=[],
                    help="run only tests whose name contains this")
    ap.add_argument("-v", action="store_true",
                    help="print tracebacks and daemon stderr of failures")
    ap.add_argument("-t", type=float, default=None,
                    help="per-test timeout in seconds (default: per test)")
    args = ap.parse_args()

    watchdog = threading.Timer(RUN_TIMEOUT, lambda: (
        print(f"FAIL run: whole run exceeded {RUN_TIMEOUT:.0f}s", flush=True),
        harness.kill_all(), os._exit(1)))
    watchdog.daemon = True
    watchdog.start()

    counts = {"pass": 0, "fail": 0, "skip": 0}
    try:
        tests = discover(args.k)
        module = None
        for modname, name, func, timeout in tests:
            if module is not None and modname != module:
                report_module_end(module, counts)
            module = modname
            start = time.monotonic()
            (status, reason), tb = run_one(func, args.t or timeout)
            problems = harness.check_processes()
            if problems and status != "fail":
                status, reason = "fail", "; ".join(problems)
            elif problems:
                reason += "; " + "; ".join(problems)
            elapsed = time.monotonic() - start
            counts[status] += 1
            reason = one_line(reason)
            if status == "pass":
                print(f"PASS {name} ({elapsed:.2f}s)", flush=True)
            elif status == "skip":
                print(f"SKIP {name}: {reason}", flush=True)
            else:
                print(f"FAIL {name}: {reason}", flush=True)
                if args.v and tb:
                    print(indent(tb), flush=True)
        if module is not None:
            report_module_end(module, counts)
        problems = harness.end_run()
        if problems:
            counts["fail"] += 1
            print(f"FAIL teardown: {one_line('; '.join(problems))}",
                  flush=True)
    finally:
        harness.kill_all()
        harness.remove_tmpdir()
    print(f"{counts['pass']} passed, {counts['fail']} failed, "
          f"{counts['skip']} skipped", flush=True)
    return 0 if counts["fail"] == 0 else 1


def report_module_end(module, counts):
    problems = harness.end_module()
    if problems:
        counts["fail"] += 1
        print(f"FAIL {module}.teardown: {one_line('; '.join(problems))}",
              flush=True)


def one_line(text, limit=2000):
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def indent(text):
    return "\n".join("    | " + line for line in text.rstrip().splitlines())


if __name__ == "__main__":
    sys.exit(main())
