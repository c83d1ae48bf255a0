"""Build and install hygiene: an existing config survives `make install`,
the daemon builds without the check library and without libsystemd (and
then installs a unit that needs neither), and the tarball ships LICENSE.

These run make in the build tree of FANOUTD_BIN, or configure a scratch
build of FANOUTD_SRCDIR with pkg-config made blind to some libraries.
"""

import filecmp
import os
import re
import shutil
import subprocess
import tempfile

import harness as h
from harness import check, eq
from test_service import (make_var, run_cmd, sanitized, srcpath, tool,
                          unit_lines, unit_values)

BUILD_TIMEOUT = 300


def builddir():
    d = os.path.dirname(os.path.dirname(os.path.abspath(
        h.env("FANOUTD_BIN"))))
    check(os.path.isfile(os.path.join(d, "Makefile")),
          f"no Makefile in {d} (FANOUTD_BIN's build tree)")
    return d


def make(d, *args, env=None):
    rc, out, err = run_cmd(["make", "-s", "-C", d] + list(args),
                           timeout=BUILD_TIMEOUT, env=env)
    return rc, out + err


def files_under(root):
    return sorted(os.path.relpath(os.path.join(r, f), root)
                  for r, _, fs in os.walk(root) for f in fs)


def test_install_keeps_an_existing_config():
    b = builddir()
    dest = tempfile.mkdtemp(prefix="destdir-", dir=h.tmpdir())
    etc = dest + make_var(b, "sysconfdir")
    conf, sample = (os.path.join(etc, "fanoutd.conf"),
                    os.path.join(etc, "fanoutd.conf.sample"))
    default = srcpath("conf", "fanoutd.conf")

    rc, out = make(b, "install", f"DESTDIR={dest}")
    eq(rc, 0, f"first make install: {out[-600:]}")
    check(filecmp.cmp(conf, default, shallow=False),
          "the first install did not install the default config")
    check(not os.path.exists(sample), "a .sample on the first install")

    edited = "# edited by the operator\nlog = { level = \"debug\"; };\n"
    with open(conf, "w") as f:
        f.write(edited)
    rc, out = make(b, "install", f"DESTDIR={dest}")
    eq(rc, 0, f"second make install: {out[-600:]}")
    with open(conf) as f:
        eq(f.read(), edited, "the operator's fanoutd.conf after reinstall")
    check(os.path.isfile(sample) and filecmp.cmp(sample, default,
                                                 shallow=False),
          "the default is not installed as fanoutd.conf.sample")
    check("keeping" in out, f"make install does not say it kept the file: "
                            f"{out[-400:]}")

    rc, out = make(b, "uninstall", f"DESTDIR={dest}")
    eq(rc, 0, f"make uninstall: {out[-600:]}")
    eq(files_under(dest), [os.path.relpath(conf, dest)],
       "left after uninstall (only the edited config may stay)")

    # A config that is still the default goes with the package.
    shutil.copy(default, conf)
    rc, out = make(b, "uninstall", f"DESTDIR={dest}")
    eq(rc, 0, f"make uninstall: {out[-600:]}")
    eq(files_under(dest), [], "left after uninstall of a default config")


test_install_keeps_an_existing_config.timeout = BUILD_TIMEOUT


def blind_pkg_config(hide):
    """A PKG_CONFIG_LIBDIR with every .pc file pkg-config finds except
    those named in hide."""
    rc, out, err = run_cmd(["pkg-config", "--variable", "pc_path",
                            "pkg-config"])
    eq(rc, 0, f"pkg-config pc_path: {err}")
    path = os.environ.get("PKG_CONFIG_PATH", "")
    dirs = [d for d in (path + ":" + out.strip()).split(":") if d]
    pcdir = tempfile.mkdtemp(prefix="pc-", dir=h.tmpdir())
    for d in dirs:
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            target = os.path.join(pcdir, name)
            if (name.endswith(".pc") and name[:-3] not in hide
                    and not os.path.exists(target)):
                os.symlink(os.path.join(d, name), target)
    return pcdir


def needed_libraries(binary):
    rc, out, err = run_cmd(["readelf", "-d", binary])
    eq(rc, 0, f"readelf -d: {err}")
    return re.findall(r"\(NEEDED\).*\[(.+)\]", out)


def test_build_without_check_or_libsystemd():
    """configure finds neither check nor libsystemd: the daemon builds and
    installs a Type=exec unit and no socket unit; make check refuses."""
    if sanitized(h.env("FANOUTD_BIN")):
        raise h.Skip("configures a plain build; runs in the plain suite")
    analyze = tool("systemd-analyze", "systemd")
    top = tempfile.mkdtemp(prefix="nocheck-", dir=h.tmpdir())
    b, prefix = os.path.join(top, "build"), os.path.join(top, "prefix")
    os.mkdir(b)
    unitdir = os.path.join(prefix, "lib", "systemd", "system")
    env = dict(os.environ,
               PKG_CONFIG_LIBDIR=blind_pkg_config({"check", "libsystemd"}),
               PKG_CONFIG_PATH="")
    p = subprocess.run([srcpath("configure"), "-q", f"--prefix={prefix}",
                        f"--with-systemdsystemunitdir={unitdir}"],
                       cwd=b, env=env, capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=BUILD_TIMEOUT)
    rc, out, err = p.returncode, p.stdout, p.stderr
    eq(rc, 0, f"configure without check and libsystemd: {(out + err)[-800:]}")
    check("check not found" in err, f"configure's warning: {err[-400:]}")
    rc, out = make(b, f"-j{os.cpu_count() or 2}", env=env)
    eq(rc, 0, f"make without check and libsystemd: {out[-800:]}")
    binary = os.path.join(b, "daemon", "fanoutd")
    libs = needed_libraries(binary)
    check(libs and not any("systemd" in l for l in libs),
          f"fanoutd links {libs}")
    check(not any("check" in l for l in libs), f"fanoutd links {libs}")

    rc, out = make(b, "install", env=env)
    eq(rc, 0, f"make install: {out[-800:]}")
    eq(sorted(os.listdir(unitdir)), ["fanoutd.service"],
       "units installed without libsystemd")
    service = os.path.join(unitdir, "fanoutd.service")
    with open(service) as f:
        lines = unit_lines(f.read())
    eq(unit_values(lines, "Service", "Type"), ["exec"], "Type=")
    eq(unit_values(lines, "Service", "NotifyAccess"), [], "NotifyAccess=")
    rc, out, err = run_cmd([analyze, "verify", "--man=no", service])
    about = [l for l in (out + err).splitlines() if "fanoutd" in l]
    check(rc == 0 and not about, f"systemd-analyze verify: {out}{err}")
    rc, out, err = run_cmd([os.path.join(prefix, "sbin", "fanoutd"), "-t",
                            "-c", os.path.join(prefix, "etc",
                                               "fanoutd.conf")])
    eq(rc, 0, f"installed fanoutd -t: {out}{err}")

    rc, out = make(b, "check", env=env)
    check(rc != 0, "make check passed without the check library")
    check("need the check library" in out,
          f"make check's message: {out[-600:]}")
    ran = [f for f in files_under(os.path.join(b, "tests"))
           if f.endswith(".log")]
    eq(ran, [], "tests that ran without the check library")


test_build_without_check_or_libsystemd.timeout = BUILD_TIMEOUT


def test_dist_ships_license():
    b = builddir()
    dist = os.path.join(tempfile.mkdtemp(prefix="dist-", dir=h.tmpdir()),
                        "fanoutd-dist")
    rc, out = make(b, "distdir", f"distdir={dist}")
    eq(rc, 0, f"make distdir: {out[-600:]}")
    lic = os.path.join(dist, "LICENSE")
    check(os.path.isfile(lic), "LICENSE is not in the tarball's tree")
    check(filecmp.cmp(lic, srcpath("LICENSE"), shallow=False),
          "the tarball's LICENSE differs")
    with open(lic) as f:
        text = f.read()
    check("Copyright (c) 2026 fanoutd developers" in text and
          "ISC" in text, f"LICENSE: {text[:200]!r}")
