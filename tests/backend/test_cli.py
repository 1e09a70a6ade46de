"""The `t2bs` command line: exit codes, one-line errors, doctor, progress modes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import t2bs_sleepy  # noqa: F401  (registers the `sleepy` pipeline)

from t2bs.cli import add_run_options, execute_run, main


def t2bs(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "t2bs", *args], capture_output=True, text=True, env=env, timeout=60)


def test_doctor_reports_every_check_as_json() -> None:
    result = t2bs("doctor", "--json")
    assert result.returncode == 0, result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    expected = {"python", "t2bs", "torch", "cuda", "gsplat", "diffusers", "transformers", "mediapipe", "models", "disk"}
    assert expected <= set(checks)
    assert checks["torch"]["status"] == "ok"
    assert checks["mediapipe"]["status"] == "ok", "the test setup installs MediaPipe (scripts/setup.sh)"
    assert all(c["status"] in ("ok", "warn", "missing") for c in checks.values())


def test_doctor_table_and_version() -> None:
    result = t2bs("doctor")
    assert result.returncode == 0 and "gsplat" in result.stdout and "disk" in result.stdout
    assert t2bs("--version").stdout.startswith("t2bs ")


def test_doctor_finds_cached_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from t2bs.doctor import check_models

    (tmp_path / "models--Wan-AI--Wan2.1-I2V-14B-480P-Diffusers" / "snapshots").mkdir(parents=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    check = check_models()
    assert check.status == "ok" and "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers" in check.detail


@pytest.mark.parametrize("args", [("nonsense",), ("doctor", "--bogus"), ()])
def test_usage_errors_are_one_line_exit_2(args: tuple[str, ...]) -> None:
    result = t2bs(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def _run_namespace(out: Path, *flags: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_run_options(parser)
    return parser.parse_args(["--out", str(out), *flags])


def test_execute_run_json_mode_prints_events_then_result(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = execute_run("sleepy", {"stages": 2, "steps": 2, "step_s": 0.0}, _run_namespace(tmp_path / "b", "--json"))
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[-1] == {"event": "result", "bundle": str(tmp_path / "b"), "status": "complete"}
    assert {line["stage"] for line in lines[:-1]} == {"s0", "s1"}


def test_execute_run_quiet_and_bar_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert execute_run("sleepy", {"step_s": 0.0}, _run_namespace(tmp_path / "q", "--quiet")) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert execute_run("sleepy", {"step_s": 0.0}, _run_namespace(tmp_path / "bar")) == 0
    assert "Bundle written to" in capsys.readouterr().err


def test_bad_plugin_module_is_an_error_event_and_the_server_lives(plugin_env: dict[str, str]) -> None:
    env = {**plugin_env, "T2BS_PLUGINS": "no_such_plugin_module"}
    requests = '{"id": 1, "cmd": "ping"}\n{"id": 2, "cmd": "shutdown"}\n'
    proc = subprocess.run(
        [sys.executable, "-m", "t2bs", "serve"], input=requests, capture_output=True, text=True, env=env, timeout=60
    )
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["event"] == "error" and first["code"] == "input"
    assert "no_such_plugin_module" in first["message"] and "T2BS_PLUGINS" in first["message"]
    assert second["event"] == "result"
    assert proc.returncode == 0 and "Traceback" not in proc.stderr


def test_main_returns_exit_code_for_input_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from t2bs import doctor
    from t2bs.errors import InputError

    def broken(_: object) -> list[object]:
        raise InputError("The output folder is not writable.")

    monkeypatch.setattr(doctor, "run_checks", broken)
    assert main(["doctor"]) == 2
    assert capsys.readouterr().err == "t2bs: The output folder is not writable.\n"


def test_importing_t2bs_sets_a_short_openmp_spin_unless_the_user_chose_one() -> None:
    # Read by libgomp when torch loads: a lone fit keeps its threads busy, two processes do not
    # starve each other (backend/src/t2bs/__init__.py).
    probe = "import os, t2bs; print(os.environ['GOMP_SPINCOUNT'], os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    ours = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert ours.stdout.split() == ["3000", "PASSIVE"], ours.stderr
    theirs = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**env, "GOMP_SPINCOUNT": "0", "OMP_WAIT_POLICY": "ACTIVE"},
        timeout=120,
    )
    assert theirs.stdout.split() == ["0", "ACTIVE"], theirs.stderr
