"""The module graph agrees with the layers in scripts/layers: arrows point
down, no cycle, and the worker-side modules include neither jansson nor
libevent.  The checker itself is shown to catch each kind of violation
on a copy of daemon/ with one bad include added."""

import os
import shutil
import subprocess
import sys

import harness as h
from harness import check, eq


def layers(srcdir):
    script = os.path.join(h.env("FANOUTD_SRCDIR"), "scripts", "layers")
    p = subprocess.run([sys.executable, script, srcdir],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    return p.returncode, p.stdout.decode()


def test_the_tree_keeps_its_layers():
    rc, out = layers(h.env("FANOUTD_SRCDIR"))
    eq(rc, 0, f"scripts/layers: {out}")
    check(out.rstrip().endswith("layers: ok"), out)


def broken_copy(name, edits):
    """A copy of daemon/ where each (module, line) of edits puts line at
    the top of module.c."""
    top = os.path.join(h.tmpdir(), name)
    shutil.rmtree(top, ignore_errors=True)
    shutil.copytree(os.path.join(h.env("FANOUTD_SRCDIR"), "daemon"),
                    os.path.join(top, "daemon"))
    for module, line in edits:
        path = os.path.join(top, "daemon", module + ".c")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(line + "\n" + text)
    return top


SCENARIOS = [
    dict(name="layers_upward_arrow",
         edits=[("fetch", '#include "batch.h"')],
         words=["fetch", "batch.h", "higher layer"]),
    # url and expect share a layer: including each other is a cycle and
    # nothing else
    dict(name="layers_cycle",
         edits=[("url", '#include "expect.h"'), ("expect", '#include "url.h"')],
         words=["cycle: expect -> url -> expect", "1 violation"]),
    dict(name="layers_worker_includes_jansson",
         edits=[("pool", "#include <jansson.h>")], words=["pool", "jansson"]),
    dict(name="layers_worker_includes_libevent",
         edits=[("policy", "#include <event2/event.h>")],
         words=["policy", "libevent"]),
]


def scenario(s):
    rc, out = layers(broken_copy(s["name"], s["edits"]))
    eq(rc, 1, f"exit status with {s['edits']}: {out}")
    for w in s["words"]:
        check(w in out, f"report lacks {w!r}: {out}")
