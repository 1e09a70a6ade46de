"""A test plugin: the `sleepy` pipeline, whose stages sleep in steps and write one small file each.

Loaded through $T2BS_PLUGINS, the same way a studio plugin is, so `t2bs serve` in a real subprocess can
run it. Run args: ``stages`` (count, default 3), ``steps`` (per stage, default 5), ``step_s`` (sleep per
step, default 0.01), ``fail_in`` (a stage name that raises midway), ``bad_input_in`` (a stage name that
raises InputError), ``print_junk`` (print to stdout from a stage, to prove the protocol stream is safe).
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from typing import Any

from t2bs.errors import InputError
from t2bs.pipelines import PIPELINES, PipelinePlan
from t2bs.stage import Stage, StageContext

log = logging.getLogger("t2bs.sleepy")


class SleepyStage(Stage):
    def __init__(self, name: str, steps: int, step_s: float, fail: bool, bad_input: bool, junk: bool) -> None:
        self.name = name
        self.outputs = (f"sleepy/{name}.txt",)
        self.steps, self.step_s, self.fail, self.bad_input, self.junk = steps, step_s, fail, bad_input, junk

    def run(self, ctx: StageContext) -> None:
        log.info("sleepy stage %s begins", self.name)
        if self.junk:
            print("junk on stdout that must not reach the protocol stream")
            sys.stdout.flush()
        for step in range(self.steps):
            ctx.step(step / self.steps, f"step {step + 1} of {self.steps}")
            if step == self.steps // 2:
                if self.fail:
                    raise RuntimeError(f"stage {self.name} broke on purpose")
                if self.bad_input:
                    raise InputError(f"Stage {self.name} found the input unusable.")
            time.sleep(self.step_s)
        ctx.output(self.outputs[0]).write_text(f"{self.name} {uuid.uuid4()}\n")
        ctx.record_metrics(steps=self.steps)


@PIPELINES.register("sleepy")
def build_sleepy(args: dict[str, Any]) -> PipelinePlan:
    count = int(args.get("stages", 3))
    steps = int(args.get("steps", 5))
    step_s = float(args.get("step_s", 0.01))
    stages: list[Stage] = [
        SleepyStage(
            f"s{i}",
            steps,
            step_s,
            fail=args.get("fail_in") == f"s{i}",
            bad_input=args.get("bad_input_in") == f"s{i}",
            junk=bool(args.get("print_junk")),
        )
        for i in range(count)
    ]
    return PipelinePlan(stages=stages, settings={"stages": count, "steps": steps}, prompt=args.get("prompt"))
