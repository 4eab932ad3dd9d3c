"""Before Qt starts: can the window's platform plugin load here? If not, which package to install.

A Linux system without the X11 libraries Qt's `xcb` plugin links against makes Qt abort the
process with a message that names the wrong library. `check()` finds the missing ones first,
without loading Qt: `ldd` on the plugin lists every library the dynamic loader cannot find;
where there is no `ldd`, a child process tries the plugin (with Qt's plugin debugging on) and
dies in our place. Each missing soname is mapped to its Debian/Ubuntu and Fedora package.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Platforms that need no system libraries beyond Qt's own, or that this check does not know
# (wayland): Qt is left to say what it says.
UNCHECKED_PLATFORMS = frozenset({"offscreen", "minimal", "minimalegl", "wayland", "wayland-egl",
                                 "wayland-brcm", "vnc", "linuxfb", "eglfs", "vkkhrdisplay"})

PROBE_TIMEOUT_S = 30.0
LDD_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Package:
    """Where a library comes from on the two families of distributions we name."""

    debian: str  # Debian and Ubuntu
    fedora: str  # Fedora, RHEL and their kin (dnf)


# soname -> packages. The libraries Qt's xcb plugin, Qt Gui and Qt Widgets load (directly or
# through one another) on a desktop Linux; PySide6 brings Qt's own. Debian 13 and Ubuntu 24.04
# renamed some (libglib2.0-0t64, libpng16-16t64): apt installs those for the older name.
PACKAGES: dict[str, Package] = {
    "libxcb.so.1": Package("libxcb1", "libxcb"),
    "libxcb-cursor.so.0": Package("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": Package("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": Package("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": Package("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-randr.so.0": Package("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": Package("libxcb-render0", "libxcb"),
    "libxcb-render-util.so.0": Package("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-shape.so.0": Package("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": Package("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": Package("libxcb-sync1", "libxcb"),
    "libxcb-util.so.1": Package("libxcb-util1", "xcb-util"),
    "libxcb-xfixes.so.0": Package("libxcb-xfixes0", "libxcb"),
    "libxcb-xinerama.so.0": Package("libxcb-xinerama0", "libxcb"),
    "libxcb-xinput.so.0": Package("libxcb-xinput0", "libxcb"),
    "libxcb-xkb.so.1": Package("libxcb-xkb1", "libxcb"),
    "libxkbcommon.so.0": Package("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": Package("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libX11.so.6": Package("libx11-6", "libX11"),
    "libX11-xcb.so.1": Package("libx11-xcb1", "libX11-xcb"),
    "libXau.so.6": Package("libxau6", "libXau"),
    "libXdmcp.so.6": Package("libxdmcp6", "libXdmcp"),
    "libEGL.so.1": Package("libegl1", "libglvnd-egl"),
    "libGL.so.1": Package("libgl1", "libglvnd-glx"),
    "libGLX.so.0": Package("libglx0", "libglvnd-glx"),
    "libOpenGL.so.0": Package("libopengl0", "libglvnd-opengl"),
    "libGLdispatch.so.0": Package("libglvnd0", "libglvnd"),
    "libfontconfig.so.1": Package("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": Package("libfreetype6", "freetype"),
    "libdbus-1.so.3": Package("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": Package("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": Package("libglib2.0-0", "glib2"),
    "libexpat.so.1": Package("libexpat1", "expat"),
    "libpng16.so.16": Package("libpng16-16", "libpng"),
    "libbrotlicommon.so.1": Package("libbrotli1", "libbrotli"),
    "libbrotlidec.so.1": Package("libbrotli1", "libbrotli"),
    "libz.so.1": Package("zlib1g", "zlib"),
    "libzstd.so.1": Package("libzstd1", "libzstd"),
    "liblz4.so.1": Package("liblz4-1", "lz4-libs"),
    "liblzma.so.5": Package("liblzma5", "xz-libs"),
    "libsystemd.so.0": Package("libsystemd0", "systemd-libs"),
    "libcap.so.2": Package("libcap2", "libcap"),
    "libgcrypt.so.20": Package("libgcrypt20", "libgcrypt"),
    "libgpg-error.so.0": Package("libgpg-error0", "libgpg-error"),
    "libpcre2-8.so.0": Package("libpcre2-8-0", "pcre2"),
    "libbsd.so.0": Package("libbsd0", "libbsd"),
    "libmd.so.0": Package("libmd0", "libmd"),
    "libstdc++.so.6": Package("libstdc++6", "libstdc++"),
    "libgcc_s.so.1": Package("libgcc-s1", "libgcc"),
}

# What Qt's xcb plugin and the Qt libraries FleetView uses link against, beyond the C library
# and what every system has (zlib, zstd): README's "System packages on Linux" installs their
# packages (tests/test_platform_check.py holds README and the plugin to this list).
WINDOW_LIBRARIES = (
    "libEGL.so.1", "libGL.so.1", "libfontconfig.so.1", "libfreetype.so.6", "libdbus-1.so.3",
    "libglib-2.0.so.0", "libgthread-2.0.so.0", "libX11.so.6", "libX11-xcb.so.1",
    "libxkbcommon.so.0", "libxkbcommon-x11.so.0", "libxcb.so.1", "libxcb-cursor.so.0",
    "libxcb-icccm.so.4", "libxcb-image.so.0", "libxcb-keysyms.so.1", "libxcb-randr.so.0",
    "libxcb-render.so.0", "libxcb-render-util.so.0", "libxcb-shape.so.0", "libxcb-shm.so.0",
    "libxcb-sync.so.1", "libxcb-util.so.1", "libxcb-xfixes.so.0", "libxcb-xkb.so.1",
)

# Qt's own libraries travel with PySide6 (or the bundle): missing, the install is broken.
_QT_OWN = re.compile(r"^lib(Qt6|pyside6|shiboken6|icu)")
_NOT_FOUND = re.compile(r"^\s*(\S+)\s*=>\s*not found", re.MULTILINE)
_DLOPEN_FAILED = re.compile(r"(\S+\.so[.\d]*): cannot open shared object file")


def qt_platform(env: Mapping[str, str]) -> str:
    """The platform plugin Qt tries first: QT_QPA_PLATFORM's first entry ("wayland;xcb"
    means wayland, then xcb), else wayland in a Wayland session, else xcb."""
    named = [p.strip() for p in env.get("QT_QPA_PLATFORM", "").split(";") if p.strip()]
    if named:
        return named[0].split(":", 1)[0].lower()  # "xcb:option" carries plugin options
    if env.get("XDG_SESSION_TYPE") == "wayland" and env.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "xcb"


def qt_dir() -> Path | None:
    """PySide6's Qt directory (its lib/ and plugins/), found without importing Qt."""
    try:
        spec = importlib.util.find_spec("PySide6")
    except (ImportError, ValueError):
        spec = None
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    if getattr(sys, "frozen", False):
        roots.append(str(Path(getattr(sys, "_MEIPASS", "")) / "PySide6"))
    for root in roots:
        if (Path(root) / "Qt").is_dir():
            return Path(root) / "Qt"
    return None


def plugin_path(platform: str, env: Mapping[str, str], qt: Path | None) -> Path | None:
    """The plugin file Qt loads for `platform`; QT_QPA_PLATFORM_PLUGIN_PATH first, as Qt."""
    name = f"libq{platform}.so"
    folders = [Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"])] \
        if env.get("QT_QPA_PLATFORM_PLUGIN_PATH") else []
    if qt is not None:
        folders.append(qt / "plugins" / "platforms")
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    return None


def missing_in_ldd(output: str) -> list[str]:
    """The sonames `ldd` reports as "not found", each once, in its order."""
    return list(dict.fromkeys(_NOT_FOUND.findall(output)))


def missing_in_qt_debug(output: str) -> list[str]:
    """The sonames a failed plugin load names, from Qt's QT_DEBUG_PLUGINS output."""
    return list(dict.fromkeys(_DLOPEN_FAILED.findall(output)))


def distribution(os_release: str) -> str | None:
    """"debian" or "fedora" from /etc/os-release's ID and ID_LIKE; None for the others."""
    ids: list[str] = []
    for line in os_release.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("ID", "ID_LIKE"):
            ids += value.strip().strip("\"'").lower().split()
    if any(i in ("debian", "ubuntu") for i in ids):
        return "debian"
    if any(i in ("fedora", "rhel", "centos") for i in ids):
        return "fedora"
    return None


def missing_message(platform: str, plugin: Path, sonames: list[str],
                    family: str | None) -> str:
    """What to tell the user: each missing library, its package, the command to install
    them on this distribution (or on both families when it is neither)."""
    own = [s for s in sonames if _QT_OWN.match(s)]
    system = [s for s in sonames if s not in own]
    lines = [f"the window cannot open: Qt's {platform!r} platform plugin ({plugin}) needs "
             f"{'a library' if len(sonames) == 1 else 'libraries'} this system lacks:"]
    width = max(len(s) for s in sonames)
    for soname in system:
        package = PACKAGES.get(soname)
        if package is None:
            finders = {"debian": f"`apt-file search {soname}`",
                       "fedora": f"`dnf provides '*/{soname}'`"}
            finder = finders.get(family or "") or " or ".join(finders.values())
            where = f"no package known to FleetView; find the one that has it with {finder}"
        elif family == "debian":
            where = f"package {package.debian}"
        elif family == "fedora":
            where = f"package {package.fedora}"
        else:
            where = f"Debian/Ubuntu package {package.debian}, Fedora package {package.fedora}"
        lines.append(f"  {soname:<{width}}  {where}")
    for soname in own:
        lines.append(f"  {soname:<{width}}  part of Qt itself: PySide6 is incomplete; "
                     "reinstall it with `pip install --force-reinstall PySide6-Essentials`")
    known = [PACKAGES[s] for s in system if s in PACKAGES]
    if known:
        debian = " ".join(dict.fromkeys(p.debian for p in known))
        fedora = " ".join(dict.fromkeys(p.fedora for p in known))
        lines.append("Install with:")
        if family in ("debian", None):
            lines.append(f"  sudo apt-get install {debian}   (Debian, Ubuntu)")
        if family in ("fedora", None):
            lines.append(f"  sudo dnf install {fedora}   (Fedora)")
    lines.append("then run fleetview again. README, 'System packages on Linux', lists all the "
                 "packages the window needs; the commands without a window (snapshot, collect, "
                 "doctor) work without them.")
    return "\n".join(lines)


def no_display_message() -> str:
    return ("the window cannot open: no X display (DISPLAY is not set). Run fleetview in a "
            "desktop session, or over `ssh -X`; on Wayland set QT_QPA_PLATFORM=wayland. The "
            "commands without a window work here: fleetview snapshot, collect, doctor.")


Runner = Callable[..., subprocess.CompletedProcess]


def ldd_missing(plugin: Path, run: Runner = subprocess.run) -> list[str] | None:
    """The libraries the loader cannot find for `plugin` (and all it links), or None where
    `ldd` is not there or says nothing useful."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return None
    try:
        result = run([ldd, str(plugin)], capture_output=True, text=True, timeout=LDD_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0 and "=>" not in result.stdout:
        return None
    return missing_in_ldd(result.stdout)


def probe_missing(platform: str, env: Mapping[str, str],
                  run: Runner = subprocess.run) -> list[str] | None:
    """Load the plugin in a child Python with Qt's plugin debugging on: a plugin that cannot
    load aborts that child, not us. The sonames its loader could not open, or None where no
    child can be started (a bundle has no interpreter to start)."""
    if getattr(sys, "frozen", False):
        return None
    probe = "from PySide6.QtGui import QGuiApplication; QGuiApplication(['fleetview-probe'])"
    child_env = {**env, "QT_QPA_PLATFORM": platform, "QT_DEBUG_PLUGINS": "1"}
    try:
        result = run([sys.executable, "-c", probe], capture_output=True, text=True,
                     timeout=PROBE_TIMEOUT_S, env=child_env, preexec_fn=_no_core_dump)
    except (OSError, subprocess.SubprocessError):
        return None
    return missing_in_qt_debug(result.stderr)


def _no_core_dump() -> None:
    # The probe may abort on purpose; it leaves no core file behind.
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _os_release() -> str:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        with contextlib.suppress(OSError):
            return Path(path).read_text(encoding="utf-8", errors="replace")
    return ""


def check(env: Mapping[str, str] | None = None, run: Runner = subprocess.run,
          os_release: str | None = None, qt: Path | None = None) -> str | None:
    """None when the window can start as far as can be told before Qt loads, else the
    message to print instead of letting Qt abort. Linux only; FLEETVIEW_SKIP_PLATFORM_CHECK=1
    turns it off."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux") or env.get("FLEETVIEW_SKIP_PLATFORM_CHECK") == "1":
        return None
    platform = qt_platform(env)
    if platform != "xcb":
        return None
    plugin = plugin_path(platform, env, qt or qt_dir())
    if plugin is None:
        return None  # Qt will say which plugins it has; nothing to add
    missing = ldd_missing(plugin, run)
    if missing is None:
        missing = probe_missing(platform, env, run)
    if missing:
        release = _os_release() if os_release is None else os_release
        return missing_message(platform, plugin, missing, distribution(release))
    if not env.get("DISPLAY"):
        return no_display_message()
    return None
