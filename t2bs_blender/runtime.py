"""The add-on's live state: the backend, the current job, and the main-thread timer that applies events.

Backends deliver events on their own threads into a queue; `tick()` runs on Blender's main thread
(registered with `bpy.app.timers`), drains the queue, updates `JobState` for the panel, and imports the
finished bundle, because bpy data may only be touched from the main thread.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import Any

import bpy

from . import prefs
from .bridge import Backend, BackendError, InProcessBackend, JobState, SubprocessBackend
from .bundle import BundleError
from .setup_backend import SetupJob

TICK_S = 0.1


class Runtime:
    """One per Blender session (module-level `RUNTIME`)."""

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.backend_key: tuple[str, str] | None = None
        self.job = JobState()
        self.setup: SetupJob | None = None
        self.import_options: dict[str, Any] = {}
        # `t2bs serve` sends a run's last event a moment before it is ready for the next run, so a run
        # started right after another may be refused as "busy": it is resent a few times.
        self._request: tuple[str, dict[str, Any], Path] | None = None
        self._busy_retries = 0
        self._retry_at: float | None = None
        self.imported: str | None = None  # name of the head object the last finished run created

    # -- backend --------------------------------------------------------------------------------------

    def ensure_backend(self, preferences: Any) -> Backend:
        """The backend the preferences ask for, started; restarted when the preferences changed."""
        mode = preferences.backend_mode
        python = prefs.resolved_python(preferences) if mode == "SUBPROCESS" else ""
        key = (mode, python)
        if self.backend is not None and self.backend_key == key and self.backend.alive():
            return self.backend
        self.stop_backend()
        backend: Backend = SubprocessBackend(python) if mode == "SUBPROCESS" else InProcessBackend()
        backend.start()  # BackendError goes to the operator, which reports it
        self.backend, self.backend_key = backend, key
        return backend

    def stop_backend(self) -> None:
        if self.backend is not None:
            self.backend.stop()
        self.backend, self.backend_key = None, None

    # -- jobs -----------------------------------------------------------------------------------------

    def start_run(self, preferences: Any, pipeline: str, args: dict[str, Any], out: Path, **import_options: Any) -> str:
        """Start a backend run; its bundle is imported when it finishes. Raises BackendError."""
        if self.job.running:
            raise BackendError("A run is already going; cancel it first.")
        backend = self.ensure_backend(preferences)
        request_id = backend.run(pipeline, args, out)
        self.job.begin(request_id)
        self._request, self._busy_retries, self._retry_at = (pipeline, args, out), 0, None
        self.import_options = import_options
        self.imported = None
        self.schedule()
        return request_id

    def cancel(self) -> None:
        if self.setup is not None:
            self.setup.cancel()
        if self.job.running and self.backend is not None and self.job.request_id is not None:
            try:
                self.backend.cancel(self.job.request_id)
                self.job.cancelling = True
            except BackendError as exc:
                self.job.fail(str(exc))

    def start_setup(self, job: SetupJob) -> None:
        if self.job.running:
            raise BackendError("A run is going; cancel it before setting up the backend.")
        self.setup = job
        self.job.begin("setup")
        job.start()
        self.schedule()

    def schedule(self) -> None:
        if not bpy.app.timers.is_registered(tick):
            bpy.app.timers.register(tick, first_interval=TICK_S, persistent=True)

    def tick(self) -> float | None:
        """Apply pending events; returns the delay to the next tick, None when idle (timer protocol)."""
        events: list[dict[str, Any]] = []
        if self.backend is not None:
            events += self.backend.poll()
        if self.setup is not None:
            events += self.setup.poll()
        changed = bool(events)
        if self._retry_at is not None and time.monotonic() >= self._retry_at:
            self._resend()
        for event in events:
            if self._refused_as_busy(event):
                continue
            outcome = self.job.apply(event)
            if outcome == "finished" and self.job.request_id == "setup":
                self._setup_done(event)
            elif outcome == "finished":
                self._import_result()
            if outcome is not None and self.job.request_id == "setup":
                self.setup = None
        if changed:
            redraw()
        return TICK_S if (self.job.running or self.setup is not None) else None

    def _refused_as_busy(self, event: dict[str, Any]) -> bool:
        """A "busy" refusal of our own fresh run: schedule a resend instead of failing (see __init__)."""
        if not (event.get("event") == "error" and event.get("code") == "busy"):
            return False
        if event.get("id") != self.job.request_id or self._request is None or self._busy_retries >= 10:
            return False
        self._busy_retries += 1
        self._retry_at = time.monotonic() + 0.1 * self._busy_retries
        return True

    def _resend(self) -> None:
        self._retry_at = None
        if self._request is None or self.backend is None or not self.job.running:
            return
        pipeline, args, out = self._request
        try:
            self.job.request_id = self.backend.run(pipeline, args, out)
        except BackendError as exc:
            self.job.fail(str(exc))

    def _import_result(self) -> None:
        from .importer import import_bundle

        if not self.job.bundle:
            self.job.fail("The backend finished without naming a bundle.", "internal")
            return
        started = time.perf_counter()
        try:
            head = import_bundle(self.job.bundle, **self.import_options)
        except BundleError as exc:
            self.job.fail(str(exc), "input")
            return
        self.imported = head.name
        self.job.message = f"imported {head.name} in {time.perf_counter() - started:.1f} s"

    def _setup_done(self, event: dict[str, Any]) -> None:
        python = str((event.get("result") or {}).get("python", ""))
        with contextlib.suppress(KeyError, AttributeError):  # the add-on was disabled meanwhile
            prefs.get().backend_python = python
        self.job.message = f"backend ready: {python}"

    def shutdown(self) -> None:
        """Blender quitting or the add-on being disabled: stop everything we started."""
        if self.setup is not None:
            self.setup.cancel()
            self.setup = None
        self.stop_backend()
        if bpy.app.timers.is_registered(tick):
            bpy.app.timers.unregister(tick)


RUNTIME = Runtime()


def tick() -> float | None:
    """The timer callback (a plain function, so it can be unregistered by identity)."""
    return RUNTIME.tick()


def redraw() -> None:
    """Redraw the 3D views so the sidebar shows new progress (no-op headless)."""
    window_manager = getattr(bpy.context, "window_manager", None)
    if window_manager is None:
        return
    for window in window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def slug(text: str, limit: int = 40) -> str:
    """A folder-name-safe version of a prompt."""
    cleaned = re.sub(r"[^A-Za-z0-9]+", "_", text.strip().lower()).strip("_")
    return cleaned[:limit].rstrip("_") or "character"


def new_bundle_dir(root: Path, prompt: str) -> Path:
    """A fresh folder for a run: `<root>/<slug>-<date-time>`."""
    return root / f"{slug(prompt)}-{time.strftime('%Y%m%d-%H%M%S')}"
