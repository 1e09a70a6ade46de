"""Stage 1, `prompt`: the identity prompt and the expression library's augmented prompts.

Writes `prompts.json`, which the video providers read:

```json
{"version": 1, "identity": "a grumpy old troll with a big nose",
 "expressions": [{"name": "jawOpen", "action": "slowly opens its mouth as wide as it can",
                  "prompt": "A grumpy old troll with a big nose. The character slowly opens ...",
                  "shapes": ["jawOpen"], "region": "mouth"}, ...]}
```
The acts come from the `expressions` setting (library names and `name=action` items of the user's
own), by default the preset's list (`expressions.PRESET_EXPRESSIONS`).
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from ..expressions import PRESET_EXPRESSIONS, Expression, select_expressions
from ..fileio import write_json_atomic
from ..stage import Stage, StageContext

PROMPTS = "prompts.json"
PROMPTS_VERSION = 1


def chosen_expressions(settings: dict[str, Any]) -> list[Expression]:
    """The run's acts: the `expressions` setting, or the preset's default list."""
    names = settings.get("expressions")
    if names is None:
        names = PRESET_EXPRESSIONS.get(str(settings.get("preset", "preview")), PRESET_EXPRESSIONS["preview"])
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise InputError("The expressions must be a list of names such as ['jawOpen', 'eyeBlink'].")
    return select_expressions(names)


class PromptStage(Stage):
    name = "prompt"
    outputs = (PROMPTS,)

    def run(self, ctx: StageContext) -> None:
        identity = (ctx.manifest.prompt or "").strip()
        if not identity:
            raise InputError('The prompt is empty; describe the character, e.g. "a grumpy old troll with a big nose".')
        expressions = chosen_expressions(ctx.settings)
        ctx.step(0.5, f"{len(expressions)} expressions")
        write_json_atomic(ctx.output(PROMPTS), {
            "version": PROMPTS_VERSION,
            "identity": identity,
            "expressions": [
                {"name": e.name, "action": e.action, "prompt": e.prompt(identity), "shapes": list(e.shape_names),
                 "region": e.region}
                for e in expressions
            ],
        })  # fmt: skip
        ctx.record_metrics(expressions=[e.name for e in expressions])
        ctx.step(1.0, "prompts written")
