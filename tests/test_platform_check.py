"""Before Qt starts, `fleetview` finds the system libraries its window lacks and names the package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleetview import platform_check as pc
from fleetview.platform_check import PACKAGES

# What `ldd libqxcb.so` prints on a bare Debian 12 with only PySide6 installed (shortened).
LDD_BARE = """\
\tlinux-vdso.so.1 (0x00007ffd4e1c5000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x1)
\tlibQt6Gui.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6Gui.so.6 (0x2)
\tlibEGL.so.1 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-icccm.so.4 => not found
\tlibfontconfig.so.1 => /lib/x86_64-linux-gnu/libfontconfig.so.1 (0x3)
\tlibsomething-new.so.2 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x4)
"""
DEBIAN = 'PRETTY_NAME="Ubuntu 24.04 LTS"\nID=ubuntu\nID_LIKE=debian\n'
FEDORA = 'NAME="Fedora Linux"\nID=fedora\n'
ARCH = "ID=arch\n"


def fake_ldd(output: str, returncode: int = 0):
    def run(command, **_kwargs):
        assert Path(command[0]).name == "ldd"
        return subprocess.CompletedProcess(command, returncode, stdout=output, stderr="")
    return run


def plugin_dir(tmp_path: Path) -> Path:
    """A Qt directory with an xcb plugin file in it (its contents are ldd's business)."""
    platforms = tmp_path / "Qt" / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (platforms / "libqxcb.so").write_bytes(b"")
    return tmp_path / "Qt"


def test_not_found_sonames_come_out_once_in_order():
    assert pc.missing_in_ldd(LDD_BARE) == [
        "libEGL.so.1", "libxkbcommon-x11.so.0", "libxcb-cursor.so.0", "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1", "libsomething-new.so.2"]


def test_each_soname_maps_to_its_packages():
    assert PACKAGES["libxcb-icccm.so.4"] == pc.Package("libxcb-icccm4", "xcb-util-wm")
    assert PACKAGES["libxcb-cursor.so.0"] == pc.Package("libxcb-cursor0", "xcb-util-cursor")
    assert PACKAGES["libxkbcommon-x11.so.0"].debian == "libxkbcommon-x11-0"
    assert PACKAGES["libEGL.so.1"] == pc.Package("libegl1", "libglvnd-egl")
    assert PACKAGES["libdbus-1.so.3"] == pc.Package("libdbus-1-3", "dbus-libs")


@pytest.mark.parametrize("release, family", [
    (DEBIAN, "debian"), ("ID=debian\n", "debian"), (FEDORA, "fedora"),
    ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', "fedora"), (ARCH, None), ("", None)])
def test_the_distribution_comes_from_os_release(release, family):
    assert pc.distribution(release) == family


def test_on_ubuntu_the_message_names_each_library_its_package_and_one_apt_command():
    message = pc.missing_message("xcb", Path("/q/libqxcb.so"),
                                 pc.missing_in_ldd(LDD_BARE), "debian")
    assert "libxcb-icccm.so.4" in message and "package libxcb-icccm4" in message
    assert ("sudo apt-get install libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 "
            "libxcb-keysyms1") in message
    assert "dnf" not in message
    # Unknown to the table: said so, with how to find its package.
    assert "libsomething-new.so.2  no package known" in message
    assert "apt-file search libsomething-new.so.2" in message
    # Qt's own words name xcb-cursor0 whatever is missing; ours name only what is.
    assert "/q/libqxcb.so" in message


def test_on_fedora_the_message_gives_the_dnf_command():
    message = pc.missing_message("xcb", Path("/q/libqxcb.so"),
                                 ["libxcb-icccm.so.4", "libxcb-render-util.so.0"], "fedora")
    assert "sudo dnf install xcb-util-wm xcb-util-renderutil" in message
    assert "apt-get" not in message


def test_elsewhere_the_message_gives_both_families():
    message = pc.missing_message("xcb", Path("/q/libqxcb.so"), ["libxcb-keysyms.so.1"], None)
    assert "Debian/Ubuntu package libxcb-keysyms1, Fedora package xcb-util-keysyms" in message
    assert "sudo apt-get install libxcb-keysyms1" in message
    assert "sudo dnf install xcb-util-keysyms" in message


def test_a_missing_qt_library_says_pyside_is_broken():
    message = pc.missing_message("xcb", Path("/q/libqxcb.so"), ["libQt6XcbQpa.so.6"], "debian")
    assert "part of Qt itself" in message and "pip install --force-reinstall" in message
    assert "apt-get" not in message


@pytest.mark.parametrize("env, platform", [
    ({}, "xcb"),
    ({"QT_QPA_PLATFORM": "offscreen"}, "offscreen"),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, "wayland"),
    ({"QT_QPA_PLATFORM": "xcb:dpi=96"}, "xcb"),
    ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, "wayland"),
    ({"XDG_SESSION_TYPE": "x11", "WAYLAND_DISPLAY": "wayland-0"}, "xcb"),
])
def test_the_platform_is_the_one_qt_tries_first(env, platform):
    assert pc.qt_platform(env) == platform


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is for Linux")
def test_check_names_the_missing_packages_from_ldd(tmp_path):
    qt = plugin_dir(tmp_path)
    message = pc.check({"DISPLAY": ":0"}, run=fake_ldd(LDD_BARE), os_release=DEBIAN, qt=qt)
    assert message is not None
    assert "libxcb-cursor0" in message and "libxcb-icccm4" in message
    assert str(qt / "plugins" / "platforms" / "libqxcb.so") in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is for Linux")
@pytest.mark.parametrize("platform", ["offscreen", "minimal", "wayland"])
def test_check_is_skipped_where_qt_is_told_another_platform(tmp_path, platform):
    qt = plugin_dir(tmp_path)
    assert pc.check({"QT_QPA_PLATFORM": platform}, run=fake_ldd(LDD_BARE), os_release=DEBIAN,
                    qt=qt) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is for Linux")
def test_with_every_library_there_only_a_missing_display_stops_the_window(tmp_path):
    qt = plugin_dir(tmp_path)
    complete = "\tlibxcb-icccm.so.4 => /lib/libxcb-icccm.so.4 (0x1)\n"
    assert pc.check({"DISPLAY": ":0"}, run=fake_ldd(complete), os_release=DEBIAN, qt=qt) is None
    message = pc.check({}, run=fake_ldd(complete), os_release=DEBIAN, qt=qt)
    assert message is not None and "DISPLAY is not set" in message
    assert "fleetview snapshot" in message


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the check is for Linux")
def test_the_check_can_be_turned_off(tmp_path):
    qt = plugin_dir(tmp_path)
    assert pc.check({"FLEETVIEW_SKIP_PLATFORM_CHECK": "1"}, run=fake_ldd(LDD_BARE),
                    os_release=DEBIAN, qt=qt) is None


def test_a_plugin_load_failure_in_qts_debug_output_names_the_soname():
    stderr = ('qt.core.library: "/q/libqxcb.so" cannot load: Cannot load library /q/libqxcb.so: '
              "libxcb-icccm.so.4: cannot open shared object file: No such file or directory\n"
              'qt.qpa.plugin: From 6.5.0, xcb-cursor0 or libxcb-cursor0 is needed to load the '
              'Qt xcb platform plugin.\n')
    assert pc.missing_in_qt_debug(stderr) == ["libxcb-icccm.so.4"]


# -- on this machine --------------------------------------------------------------------------

linux_with_qt = pytest.mark.skipif(
    not sys.platform.startswith("linux") or pc.qt_dir() is None
    or pc.plugin_path("xcb", {}, pc.qt_dir()) is None or shutil.which("ldd") is None,
    reason="needs Linux, ldd and PySide6's xcb plugin")


@linux_with_qt
def test_ldd_and_qt_itself_agree_on_what_this_machine_lacks():
    """The real check (ldd) against Qt loading the plugin in a child process: where Qt fails
    on a library, ldd named it; where ldd names none, Qt finds every library it needs."""
    plugin = pc.plugin_path("xcb", {}, pc.qt_dir())
    by_ldd = pc.ldd_missing(plugin)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    by_qt = pc.probe_missing("xcb", env)
    assert by_ldd is not None and by_qt is not None
    assert set(by_qt) <= set(by_ldd)
    assert bool(by_qt) == bool(by_ldd)
    if by_ldd:
        message = pc.check({"DISPLAY": ":0"})
        assert message is not None and all(s in message for s in by_ldd)


@linux_with_qt
def test_every_library_the_plugin_loads_here_has_a_package():
    """The table covers every system library the xcb plugin and what it links load on this
    machine (the C library's own parts aside): a PySide6 upgrade that adds one fails here."""
    plugin = pc.plugin_path("xcb", {}, pc.qt_dir())
    output = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True,
                            check=True).stdout
    libc = ("linux-vdso", "ld-linux", "libc.so", "libm.so", "libdl.so", "libpthread.so",
            "librt.so")
    sonames = [line.split()[0] for line in output.splitlines() if "=>" in line]
    system = [s for s in sonames if not s.startswith(libc) and not pc._QT_OWN.match(s)]
    assert system and [s for s in system if s not in PACKAGES] == []


@linux_with_qt
@pytest.mark.skipif(shutil.which("dpkg") is None, reason="Debian package names: needs dpkg")
def test_the_debian_names_are_the_packages_that_hold_the_libraries_here():
    plugin = pc.plugin_path("xcb", {}, pc.qt_dir())
    output = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True,
                            check=True).stdout
    paths = {os.path.realpath(line.split()[2]): line.split()[0]
             for line in output.splitlines()
             if "=> /" in line and line.split()[0] in PACKAGES}
    # One dpkg call for all; a path dpkg does not know (merged /usr spells it otherwise) is
    # left out of its answer.
    owners = subprocess.run(["dpkg", "-S", *paths], capture_output=True, text=True).stdout
    checked = 0
    for line in owners.splitlines():
        package, _, path = line.partition(": ")
        soname = paths.get(path.strip())
        if soname is None:
            continue
        assert package.split(":")[0].removesuffix("t64") == PACKAGES[soname].debian, soname
        checked += 1
    assert checked >= 10


# -- README's list of packages ------------------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_install_command(tool: str) -> set[str]:
    """The packages of README's `sudo <tool> install` command (continued lines joined)."""
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line for line in text.splitlines() if line.startswith(f"sudo {tool} install ")]
    assert len(lines) == 1, f"README has {len(lines)} `sudo {tool} install` lines"
    return set(lines[0].split()[3:])


def test_readme_installs_the_package_of_every_library_the_window_links():
    libraries = pc.WINDOW_LIBRARIES
    assert readme_install_command("apt-get") == {PACKAGES[s].debian for s in libraries}
    assert readme_install_command("dnf") == {PACKAGES[s].fedora for s in libraries}


@linux_with_qt
@pytest.mark.skipif(shutil.which("readelf") is None, reason="reads ELF headers with readelf")
def test_the_window_libraries_are_what_the_plugin_and_qt_link_against():
    qt = pc.qt_dir()
    files = [pc.plugin_path("xcb", {}, qt)] + [
        qt / "lib" / f"libQt6{name}.so.6" for name in ("XcbQpa", "Gui", "Core", "DBus", "Widgets")]
    needed: set[str] = set()
    for path in files:
        output = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True,
                                check=True).stdout
        needed |= {line.split("[", 1)[1].split("]", 1)[0] for line in output.splitlines()
                   if "(NEEDED)" in line}
    everywhere = ("ld-linux", "libc.so", "libm.so", "libdl.so", "libpthread.so", "librt.so",
                  "libstdc++.so", "libgcc_s.so", "libz.so", "libzstd.so")
    system = {s for s in needed if not s.startswith(everywhere) and not pc._QT_OWN.match(s)}
    assert system == set(pc.WINDOW_LIBRARIES)
