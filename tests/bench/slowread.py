"""The slow readers of scripts/loadtest --slow-readers: clients that POST
a fan-out with a large answer and then read it one byte at a time, and
what they report (see the top of loadtest.py).

Whether the daemon cut a reader off is seen from outside: its end of the
connection leaves ESTABLISHED in /proc/net/tcp (a close with unsent data
leaves it in FIN_WAIT1, its queue still full), which the reader itself
would only notice after draining megabytes from its receive queue.
Standard library only.
"""
import collections
import json
import select
import socket
import threading
import time

from benchlib import harness, mib

MEM_KEYS = ("VmRSS", "RssAnon", "VmHWM", "Threads")

TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV",
              "04": "FIN_WAIT1", "05": "FIN_WAIT2", "06": "TIME_WAIT",
              "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK",
              "0A": "LISTEN", "0B": "CLOSING"}


def tcp_table():
    """{(local port, remote port): (state, tx_queue, rx_queue)} of the
    IPv4 TCP sockets (/proc/net/tcp); rx_queue is what the owner has not
    read yet, tx_queue what the peer has not acknowledged."""
    out = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            tx, rx = (int(x, 16) for x in p[4].split(":"))
            out[(int(p[1].rsplit(":", 1)[1], 16),
                 int(p[2].rsplit(":", 1)[1], 16))] = (p[3], tx, rx)
    return out


def slow_items(up, n, url_bytes):
    """n URLs of /redirect?to=T, T a URL url_bytes long: each result
    carries both, so the answer is about 2 * url_bytes * n bytes."""
    base = up.url("/status/200?pad=")
    items = []
    for i in range(n):
        target = "%s%0*d" % (base, max(url_bytes - len(base), 8), i)
        items.append(up.url("/redirect?to=" + harness.urlquote(target)))
    return items


class SlowReader(threading.Thread):
    """One client that POSTs a fan-out and then reads its answer one byte
    every interval seconds until `seconds` have passed since the request
    went out; the socket stays open until close().  Times are seconds
    since the request went out."""

    def __init__(self, idx, port, body, stream, interval, seconds):
        super().__init__(daemon=True)
        self.idx, self.port, self.stream = idx, port, stream
        self.body, self.interval, self.seconds = body, interval, seconds
        self.sock = None
        self.local_port = None
        self.t0 = None
        self.first = None       # the first byte of the answer was there
        self.got = b""          # the bytes read
        self.head = b""         # the answer's head, peeked at
        self.client_end = None  # (time, "EOF" or "reset") seen by recv
        self.server_end = None  # (time, state) of the daemon's end
        self.error = None

    def run(self):
        try:
            self._run()
        except OSError as e:
            self.error = "slow reader %d: %r" % (self.idx, e)

    def _run(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        self.sock = s
        path = "/fetch?stream=1" if self.stream else "/fetch"
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n" % (path, len(self.body))
                   ).encode() + self.body)
        self.t0 = time.monotonic()
        self.local_port = s.getsockname()[1]  # for the Watcher, after t0
        end = self.t0 + self.seconds
        tick = self.t0 + self.interval
        while time.monotonic() < end and self.client_end is None:
            # Until the answer starts, watch for its first byte; then
            # only wake for the ticks.
            wait = max(0.0, min(tick, end) - time.monotonic())
            if self.first is None:
                if select.select([s], [], [], wait)[0]:
                    self.first = time.monotonic() - self.t0
            else:
                time.sleep(wait)
            if time.monotonic() >= tick:
                tick += self.interval
                self._tick(s)

    def _tick(self, s):
        # MSG_DONTWAIT is not enough on a socket with a timeout: Python
        # then waits out the timeout itself.
        s.settimeout(0)
        try:
            if b"\r\n\r\n" not in self.head:
                self.head = self.got + s.recv(
                    8192, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            b = s.recv(1, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except ConnectionResetError:
            self.client_end = (time.monotonic() - self.t0, "reset")
            return
        if not b:
            self.client_end = (time.monotonic() - self.t0, "EOF")
        else:
            self.got += b

    @property
    def read(self):
        return len(self.got)

    def size(self):
        """The whole answer's size in bytes, head included, when it has a
        Content-Length; else None."""
        length = self.status()[1]
        if length is None:
            return None
        return self.head.index(b"\r\n\r\n") + 4 + length

    def status(self):
        """The answer's status code and Content-Length (None if unseen)."""
        head = self.head.split(b"\r\n\r\n")[0].decode("latin-1")
        lines = head.split("\r\n")
        status = length = None
        if lines[0].startswith("HTTP/") and len(lines[0].split()) > 1:
            status = int(lines[0].split()[1])
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        return status, length

    def close(self):
        if self.sock is not None:
            self.sock.close()


class Watcher(threading.Thread):
    """Notes when the daemon's end of each slow reader's connection
    leaves ESTABLISHED (closed, or gone), every 0.25 s."""

    def __init__(self, readers, dport):
        super().__init__(daemon=True)
        self.readers, self.dport = readers, dport
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(0.25):
            table = tcp_table()
            for r in self.readers:
                if r.local_port is None or r.server_end is not None:
                    continue
                e = table.get((self.dport, r.local_port))
                if e is None or e[0] != "01":
                    r.server_end = (time.monotonic() - r.t0,
                                    TCP_STATES.get(e[0], e[0]) if e
                                    else "gone")


def span(values, unit="", digits=1):
    """'a–b unit' or 'a unit' of a list of numbers."""
    if not values:
        return "—"
    lo, hi = min(values), max(values)
    f = "%%.%df" % digits
    text = f % lo if round(lo, digits) == round(hi, digits) else (
        (f + "–" + f) % (lo, hi))
    return text + unit


class SlowReaders:
    """n SlowReaders of one fan-out (every other one streaming) and the
    Watcher over them."""

    def __init__(self, n, port, items, interval, seconds):
        self.body = json.dumps(items).encode()
        self.seconds = seconds
        self.readers = [SlowReader(i, port, self.body, i % 2 == 1, interval,
                                   seconds) for i in range(n)]
        self.watcher = Watcher(self.readers, port)
        self.port = port
        self.queues = {}  # reader: (its rx queue, the daemon's tx queue)

    def start(self):
        for r in self.readers:
            r.start()
        self.watcher.start()
        return self

    def finish(self):
        """Wait out the readers, note their socket queues, close them."""
        for r in self.readers:
            r.join()
        table = tcp_table()
        for r in self.readers:
            if r.local_port is not None:
                mine = table.get((r.local_port, self.port), ("", 0, 0))
                theirs = table.get((self.port, r.local_port), ("", 0, 0))
                self.queues[r] = (mine[2], theirs[1])
        time.sleep(0.3)  # one more look by the watcher before we close
        self.watcher.stop.set()
        self.watcher.join()
        for r in self.readers:
            r.close()

    def problems(self):
        """What kept a reader from measuring anything: errors, refusals."""
        out = []
        for r in self.readers:
            if r.error:
                out.append(r.error)
            elif r.status()[0] not in (None, 200):
                out.append("slow reader %d: HTTP %d" % (r.idx, r.status()[0]))
        return out

    def report(self):
        """Lines on the readers, buffered ones then streaming ones."""
        out = []
        for stream in (False, True):
            group = [r for r in self.readers if r.stream == stream]
            if group:
                out += [self._answers(group, stream), self._cuts(group)]
        return out

    @staticmethod
    def _answers(group, stream):
        statuses = collections.Counter(r.status()[0] for r in group)
        line = "    %s (%d): HTTP %s" % (
            "streaming" if stream else "buffered", len(group),
            ", ".join("%s x%d" % kv for kv in statuses.items()))
        sizes = [r.size() for r in group if r.size()]
        if sizes:
            line += ", answer %s MiB" % span([b / 1048576 for b in sizes])
        line += "; first byte at %s" % span(
            [r.first for r in group if r.first is not None], " s")
        return line + "; read %s bytes each" % span(
            [r.read for r in group], digits=0)

    def _cuts(self, group):
        cut = [r for r in group if r.server_end or r.client_end]
        line = "      cut off: %d of %d" % (len(cut), len(group))
        ends = [r.server_end for r in cut if r.server_end]
        if ends:
            line += ", the daemon's end closed at %s (%s)" % (
                span([t for t, _ in ends], " s"), ", ".join(
                    "%s x%d" % kv for kv in collections.Counter(
                        state for _, state in ends).items()))
        seen = collections.Counter(r.client_end[1] for r in cut
                                   if r.client_end)
        if seen:
            line += "; the reader saw %s" % ", ".join(
                "%s x%d" % kv for kv in seen.items())
        # What had left the daemon: read, or in either socket queue.
        left = [sum(self.queues.get(r, (0, 0))) + r.read for r in group]
        line += ("; at %g s, %s MiB of each answer had left the daemon "
                 "(read + socket queues)"
                 % (self.seconds, span([b / 1048576 for b in left])))
        sizes = [r.size() for r in group]
        if None not in sizes:
            line += ", %s MiB had not" % span(
                [max(0, n - b) / 1048576 for n, b in zip(sizes, left)])
        return line


def memory_report(base, sampler, after):
    """Lines on VmRSS, RssAnon and VmHWM: baseline, peak, growth, after,
    and a time line."""
    peak = sampler.max
    at = max(sampler.series, key=lambda s: s[1]["VmRSS"])[0] \
        if sampler.series else 0
    out = ["  daemon memory, MiB:   VmRSS  RssAnon  VmHWM",
           "    baseline          %7.1f  %7.1f  %5.1f"
           % (mib(base["VmRSS"]), mib(base["RssAnon"]), mib(base["VmHWM"])),
           "    peak              %7.1f  %7.1f  %5.1f   (VmRSS at %.1f s)"
           % (mib(peak["VmRSS"]), mib(peak["RssAnon"]), mib(peak["VmHWM"]),
              at),
           "    growth            %+7.1f  %+7.1f  %+5.1f"
           % (mib(peak["VmRSS"] - base["VmRSS"]),
              mib(peak["RssAnon"] - base["RssAnon"]),
              mib(peak["VmHWM"] - base["VmHWM"])),
           "    after (idle)      %7.1f  %7.1f  %5.1f"
           % (mib(after["VmRSS"]), mib(after["RssAnon"]),
              mib(after["VmHWM"]))]
    points, step, nxt = [], 5.0, 0.0
    for t, s in sampler.series:
        if t >= nxt:
            points.append("%2.0f s %5.1f/%-5.1f" % (t, mib(s["VmRSS"]),
                                                     mib(s["RssAnon"])))
            nxt += step
    out.append("    VmRSS/RssAnon every %.0f s:" % step)
    for i in range(0, len(points), 5):
        out.append(("      " + "  ".join(points[i:i + 5])).rstrip())
    return out


def write_series(path, sampler):
    with open(path, "w") as f:
        f.write("seconds\t" + "\t".join(MEM_KEYS) + "\n")
        for t, s in sampler.series:
            f.write("%.3f\t%s\n" % (t, "\t".join(str(s[k])
                                                  for k in MEM_KEYS)))
