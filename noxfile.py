"""Session runner: the Blender version matrix, lint and type checks.

    .venv/bin/nox -s blender-4.2 blender-5.0     # the Blender suite on bpy 4.2 LTS and 5.0.1 (CI)
    .venv/bin/nox -s blender-4.5                 # 4.5 LTS (a documented command, not in CI)
    .venv/bin/nox -s lint typecheck              # ruff; mypy on backend/ and on t2bs_blender/ (4.2 and 5.0 APIs)
    .venv/bin/nox -s blender-4.2 -- -k driver    # arguments after -- go to pytest

nox itself, ruff and mypy come with the backend's test extra (`bash scripts/setup.sh` puts them in .venv/).
The Blender sessions reuse .venv-blender-<X.Y>/ through scripts/test_blender.sh (bpy is ~350 MB: one
environment per version, made once; pip's wheel cache is kept so a recreated one downloads nothing). Only
the fake-bpy-module type checks get nox's own small environments (.nox/, reused between runs).
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.error_on_external_run = True
nox.options.sessions = ["lint", "typecheck", "blender-5.0", "blender-4.2"]

# The bpy wheel per Blender series: 4.2 = the newest 4.2.x LTS, 4.5 = the newest 4.5.x LTS, 5.0 = exactly 5.0.1.
BLENDER = {"4.2": "4.2", "4.5": "4.5", "5.0": "5.0.1"}
# Stub packages of the oldest and the newest API we support (pinned: their stubs change between dates).
FAKE_BPY = {"4.2": "fake-bpy-module-4-2==20260730", "5.0": "fake-bpy-module-5-0==20260730"}
# The add-on's only third-party import besides bpy, at the version Blender 4.2 to 5.0 bundle.
ADDON_NUMPY = "numpy==1.26.4"
VENV = ".venv/bin"


def _blender(session: nox.Session, series: str) -> None:
    # test_blender.sh makes or reuses .venv-blender-<series>/ and runs tests/blender and tests/addon there.
    session.run("bash", "scripts/test_blender.sh", BLENDER[series], *session.posargs, external=True)


for _series in BLENDER:

    def _session(session: nox.Session, series: str = _series) -> None:
        _blender(session, series)

    _session.__doc__ = f"The Blender suite on bpy {BLENDER[_series]} (.venv-blender-{_series}/)."
    nox.session(name=f"blender-{_series}", venv_backend="none")(_session)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff: lint and format check of the whole repository (settings in pyproject.toml)."""
    session.run(f"{VENV}/ruff", "check", ".", external=True)
    session.run(f"{VENV}/ruff", "format", "--check", ".", external=True)


@nox.session(name="typecheck-backend", venv_backend="none")
def typecheck_backend(session: nox.Session) -> None:
    """mypy on backend/src (the backend's own environment, .venv/, so torch and numpy are typed)."""
    session.run(f"{VENV}/mypy", "backend/src/t2bs", external=True)


for _api in FAKE_BPY:

    def _addon(session: nox.Session, api: str = _api) -> None:
        # Only the stubs and numpy here; mypy itself runs from .venv/ against this environment's packages.
        session.install("--disable-pip-version-check", "--quiet", FAKE_BPY[api], ADDON_NUMPY)
        python = f"{session.virtualenv.location}/bin/python"
        session.run(f"{VENV}/mypy", "--python-executable", python, "t2bs_blender", external=True)

    _addon.__doc__ = f"mypy on t2bs_blender/ against {FAKE_BPY[_api]}."
    nox.session(name=f"typecheck-blender-{_api}", python="3.11")(_addon)


@nox.session(venv_backend="none", requires=["typecheck-backend", *(f"typecheck-blender-{api}" for api in FAKE_BPY)])
def typecheck(session: nox.Session) -> None:
    """All type checks: backend/, and t2bs_blender/ against the 4.2 and the 5.0 API."""
