"""The prompt stage and the expression library: augmented prompts, presets, the user's own acts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from t2bs.errors import InputError
from t2bs.expressions import ARKIT_NAMES, LIBRARY, PRESET_EXPRESSIONS, select_expressions
from t2bs.runner import Runner
from t2bs.stages.prompt import PromptStage, chosen_expressions


def test_library_covers_every_arkit_shape_once() -> None:
    shapes = [shape for entry in LIBRARY for shape in entry.shape_names]
    assert len(shapes) == len(set(shapes))
    assert set(ARKIT_NAMES) <= set(shapes)
    assert {"earsBackLeft", "earsBackRight", "snarl"} <= set(shapes)  # character extras
    assert len(PRESET_EXPRESSIONS["standard"]) == 24 and len(PRESET_EXPRESSIONS["high"]) == len(LIBRARY)


def test_users_own_acts_and_bad_lists() -> None:
    chosen = select_expressions(["jawOpen", "tongueCurl=curls its tongue up.", "earWiggle=wiggles its ears|split"])
    assert [e.name for e in chosen] == ["jawOpen", "tongueCurl", "earWiggle"]
    assert chosen[1].shape_names == ("tongueCurl",) and chosen[1].action == "curls its tongue up"
    assert chosen[2].shape_names == ("earWiggleLeft", "earWiggleRight")
    for bad, message in (
        (["jawOpen", "JawOpen"], "twice"),
        (["Tongue Curl=x"], "camelCase"),
        ([], "at least one"),
        (["wink"], "Unknown expression"),
        (["tongueCurl="], "needs an action"),
    ):
        with pytest.raises(InputError, match=message):
            select_expressions(bad)
    assert [e.name for e in chosen_expressions({"preset": "standard"})][:3] == ["jawOpen", "mouthSmile", "eyeBlink"]


def test_prompt_stage_writes_augmented_prompts(tmp_path: Path) -> None:
    settings = {"expressions": ["jawOpen", "eyeBlink", "tongueCurl=curls its tongue up"]}
    Runner("prompt-only", [PromptStage()], tmp_path / "b", settings, prompt="a grumpy old troll with a big nose").run()
    prompts = json.loads((tmp_path / "b" / "prompts.json").read_text())
    assert prompts["identity"] == "a grumpy old troll with a big nose"
    first = prompts["expressions"][0]
    assert first["prompt"] == (
        "A grumpy old troll with a big nose. The character slowly opens its mouth as wide "
        "as it can, then holds the expression."
    )
    assert prompts["expressions"][1]["shapes"] == ["eyeBlinkLeft", "eyeBlinkRight"]
    assert prompts["expressions"][2]["name"] == "tongueCurl"


def test_generate_refuses_bad_arguments_before_any_work(tmp_path: Path) -> None:
    def generate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "t2bs", "generate", *args, "--out", str(tmp_path / "g")],
            capture_output=True,
            text=True,
            timeout=60,
        )

    for args, message in (
        (("  ",), "Describe the character"),
        (("a fox", "--expressions", "jawOpen,wink"), "wink"),
        (("a fox", "--asset", "nonsense"), "nonsense"),
    ):
        result = generate(*args)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "g" / "model.npz").exists()
