"""What the engine tests need: the engines imported headless, a skip that turns into a failure in CI,
and the same pygame tests run once more under classic pygame.

pygame-ce (installed by the ``dev`` extra) and classic pygame both install the import package ``pygame``,
so they cannot live in one environment. The pygame tests run in-process under pygame-ce, and again in a
child pytest whose ``sys.path`` starts with an overlay folder holding only classic pygame
(``.pygame-classic/``, git-ignored, built once with pip and cached): every other package, this one
included, is the parent's. A suite opts in with one line at module level::

    test_under_classic_pygame = classic_pygame_rerun("tests/pygame")

which collects as one test that runs those paths under classic pygame and fails with the child's failures
spelled out. In the child, :func:`expected_pygame_flavour` says ``"classic"`` and the line itself skips.

Nothing here skips in CI: where ``CI`` is set (``.ci/run`` runs with ``CI=true``), a missing engine, a
missing GL driver or an overlay that cannot be built fails the test with the reason instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, NoReturn

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent

#: The classic pygame the overlay holds (the adapters support pygame 2.5 and later, like pygame-ce).
CLASSIC_PYGAME = "pygame>=2.5,<3"
#: Where the overlay lives (git-ignored), one sub-folder per interpreter and requirement.
CLASSIC_PYGAME_DIR = ROOT / ".pygame-classic"
#: An overlay older than this is rebuilt, so that a new classic pygame release is tried within a week.
CLASSIC_PYGAME_MAX_AGE = 7 * 24 * 3600.0
#: Set in the child run to the flavour it must see.
FLAVOUR_ENV = "SPACETIME_GAME_TEST_PYGAME"
#: How long the child run of a suite may take.
CHILD_TIMEOUT = 600.0

Flavour = Literal["ce", "classic"]

# The engines' tests are headless; CI exports these too (.ci/run).
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ.setdefault("ARCADE_HEADLESS", "1")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` set to a true value), where nothing may be skipped for want of
    an engine or a driver."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def unavailable(reason: str) -> NoReturn:
    """Skip the test for ``reason``; in CI, fail it instead (CI installs everything the tests need)."""
    if in_ci():
        pytest.fail(f"{reason} (CI must run this test: a skip here would hide a missing install step)")
    pytest.skip(reason)


# ---- pygame ---------------------------------------------------------------------------------------------


def import_pygame() -> ModuleType:
    """``pygame`` (either flavour), or the test skips (fails in CI) saying it is not installed."""
    try:
        import pygame
    except ImportError as exc:
        unavailable(f"pygame is not installed ({exc}); `pip install -e '.[dev]'` installs pygame-ce")
    return pygame


def pygame_flavour(pygame: ModuleType) -> Flavour:
    """Which pygame this is: ``"ce"`` (pygame-ce, which sets ``pygame.IS_CE``) or ``"classic"``."""
    return "ce" if getattr(pygame, "IS_CE", False) else "classic"


def expected_pygame_flavour() -> Flavour:
    """The flavour this run must see: ``"classic"`` in the child run of :func:`classic_pygame_rerun`,
    else ``"ce"`` (what the ``dev`` extra installs)."""
    value = os.environ.get(FLAVOUR_ENV, "ce")
    assert value in ("ce", "classic"), f"{FLAVOUR_ENV}={value!r}"
    return "classic" if value == "classic" else "ce"


# ---- classic pygame, in an overlay on this environment ----------------------------------------------------


def _overlay_key() -> str:
    implementation = f"{sys.implementation.cache_tag}-{sys.platform}-{sys.maxsize > 2**32}"
    return hashlib.sha256(f"{implementation}|{CLASSIC_PYGAME}".encode()).hexdigest()[:12]


_PROBE = (
    "import json, pygame; print(json.dumps({'file': pygame.__file__, 'version': pygame.version.ver, "
    "'ce': bool(getattr(pygame, 'IS_CE', False))}))"
)


def _probe(folder: Path) -> dict[str, Any] | None:
    """What ``import pygame`` finds with ``folder`` first on the path, if it is classic pygame from there."""
    env = {**os.environ, "PYTHONPATH": str(folder), "PYGAME_HIDE_SUPPORT_PROMPT": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    if proc.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    inside = Path(found["file"]).resolve().is_relative_to(folder.resolve())
    return found if inside and not found["ce"] else None


def _fresh(folder: Path) -> bool:
    stamp = folder / "stamp.json"
    if not stamp.is_file():
        return False
    try:
        data = json.loads(stamp.read_text())
    except ValueError:
        return False
    return bool(
        data.get("requirement") == CLASSIC_PYGAME
        and data.get("python") == sys.version
        and time.time() - float(data.get("built", 0)) < CLASSIC_PYGAME_MAX_AGE
    )


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@functools.cache
def classic_pygame_overlay() -> Path:
    """The folder holding classic pygame alone, built with pip on first use and whenever it is stale
    (another interpreter or requirement, older than a week, or no longer importable); once per
    process. A test that cannot have it skips (fails in CI) with pip's reason."""
    folder = CLASSIC_PYGAME_DIR / _overlay_key()
    with _lock(CLASSIC_PYGAME_DIR / "lock"):
        if _fresh(folder) and _probe(folder) is not None:
            return folder
        building = folder.with_name(folder.name + ".building")
        shutil.rmtree(building, ignore_errors=True)
        t0 = time.monotonic()
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        pip += ["--no-deps", "--only-binary=:all:", "--target", str(building), CLASSIC_PYGAME]
        proc = subprocess.run(pip, capture_output=True, text=True, timeout=600, cwd=ROOT)
        if proc.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            errors = [line for line in proc.stderr.splitlines() if not line.startswith("WARNING: Location")]
            unavailable(f"could not install {CLASSIC_PYGAME} with pip: {' '.join(errors)[-600:]}")
        found = _probe(building)
        if found is None:
            shutil.rmtree(building, ignore_errors=True)
            unavailable(f"{CLASSIC_PYGAME} installed into {building} but does not import from there")
        stamp = {"requirement": CLASSIC_PYGAME, "python": sys.version, "built": time.time()}
        stamp |= {"version": found["version"], "seconds": round(time.monotonic() - t0, 1)}
        (building / "stamp.json").write_text(json.dumps(stamp, indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        building.rename(folder)
        return folder


def _failures(report: Path) -> list[str]:
    """One paragraph per failed or erroring test of a JUnit XML report: its id, message and the last
    lines of its traceback."""
    out = []
    for case in ET.parse(report).getroot().iter("testcase"):
        for problem in [*case.findall("failure"), *case.findall("error")]:
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            text = (problem.text or "").strip().splitlines()
            tail = "\n    ".join(text[-12:])
            out.append(f"{problem.tag.upper()} {name}: {problem.get('message', '')}\n    {tail}")
    return out


def run_under_classic_pygame(*paths: str, extra: tuple[str, ...] = ()) -> str:
    """Run pytest on ``paths`` (relative to the repository root) with classic pygame in place of
    pygame-ce; fail, naming every failed test, unless all of them pass. Returns the child's summary line."""
    assert paths, "name the test files or folders to run"
    overlay = classic_pygame_overlay()
    report = overlay.parent / f"report-{os.getpid()}-{time.monotonic_ns()}.xml"
    env = {**os.environ, FLAVOUR_ENV: "classic"}
    env["PYTHONPATH"] = os.pathsep.join([str(overlay), *filter(None, [os.environ.get("PYTHONPATH")])])
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", "--tb=short"]
    command += [f"--junitxml={report}", *extra, *paths]
    try:
        proc = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT
        )
        lines = proc.stdout.strip().splitlines()
        summary = lines[-1] if lines else "(no output)"
        where = f"`{' '.join(command[1:])}` with PYTHONPATH={overlay}"
        if proc.returncode == 5:
            pytest.fail(f"under classic pygame, pytest collected no tests from {paths}: {where}")
        if proc.returncode != 0:
            found = _failures(report) if report.is_file() else []
            detail = "\n".join(found) if found else "\n".join([*lines[-40:], proc.stderr[-2000:]])
            pytest.fail(f"under classic pygame ({where}): {summary}\n{detail}", pytrace=False)
        return summary
    finally:
        report.unlink(missing_ok=True)


def classic_pygame_rerun(*paths: str) -> Callable[[], None]:
    """A test function (assign it to a ``test_...`` name at module level) that runs ``paths`` again
    under classic pygame; in that child run it skips itself."""

    def test() -> None:
        if expected_pygame_flavour() == "classic":
            pytest.skip("this is the classic pygame run itself")
        summary = run_under_classic_pygame(*paths)
        print(f"classic pygame: {summary}")

    test.__doc__ = f"{', '.join(paths)} pass under classic pygame ({CLASSIC_PYGAME}) too."
    return test


# ---- arcade -----------------------------------------------------------------------------------------------

#: What headless Arcade needs from the system (Debian package names; .ci/run installs them).
EGL_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libgbm1"


def import_arcade() -> ModuleType:
    """``arcade``, imported headless (``ARCADE_HEADLESS=1``), or the test skips (fails in CI) saying
    whether arcade or the system's EGL library is missing."""
    assert os.environ.get("ARCADE_HEADLESS"), "the arcade tests run headless"
    try:
        import arcade
    except ImportError as exc:
        if getattr(exc, "name", None) in ("arcade", "pyglet"):
            unavailable(f"arcade is not installed ({exc}); `pip install -e '.[dev]'` installs it")
        # headless pyglet loads libEGL when arcade is imported
        unavailable(f"headless arcade cannot load EGL ({exc}); install the system packages {EGL_PACKAGES}")
    return arcade


def open_arcade_window(cls: type[Any], width: int, height: int, **kwargs: Any) -> Any:
    """An instance of the ``arcade.Window`` subclass ``cls``, or the test skips (fails in CI) when no
    OpenGL 3.3 context can be had headless (no Mesa EGL driver)."""
    arcade = import_arcade()
    try:
        return cls(width, height, **kwargs)
    except arcade.NoOpenGLException as exc:
        unavailable(f"no headless OpenGL 3.3 context ({exc}); install the system packages {EGL_PACKAGES}")
