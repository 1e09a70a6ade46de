"""Shape-name casings and panel regions of the add-on (its own copy of the backend's rules)."""

from __future__ import annotations

import importlib.util

import pytest

from t2bs_blender import names


@pytest.mark.parametrize(
    "written", ["EyeBlinkLeft", "eyeBlink_L", "eyeBlinkLeft", "eye_blink_left", "eyeBlink.L", " EyeBlinkLeft "]
)
def test_canonical_name_accepts_common_casings(written: str) -> None:
    assert names.canonical_name(written) == "eyeBlinkLeft"


def test_casings_round_trip_for_every_arkit_name() -> None:
    assert len(names.ARKIT_NAMES) == 52
    for name in names.ARKIT_NAMES:
        assert names.canonical_name(names.to_pascal(name)) == name
        assert names.canonical_name(names.to_ict(name)) == name
    assert names.to_ict("jawLeft") == "jawLeft" and names.to_ict("eyeBlinkRight") == "eyeBlink_R"


def test_match_columns_maps_live_link_columns() -> None:
    mapping, unmatched = names.match_columns(
        ["EyeBlinkLeft", "JawOpen", "HeadYaw", "TongueOut"], ["jawOpen", "eyeBlinkLeft", "earsBackLeft"]
    )
    assert mapping == {"EyeBlinkLeft": "eyeBlinkLeft", "JawOpen": "jawOpen"}
    assert unmatched == ["HeadYaw", "TongueOut"]


def test_group_by_region_uses_the_bundle_then_falls_back_to_the_stem() -> None:
    groups = names.group_by_region(
        ["jawOpen", "eyeBlinkLeft", "browInnerUp", "cheekPuff", "noseSneerLeft", "earsBack", "snarl", "tongueOut"],
        ["mouth", "eyes", "", "bogus", "nose", "other", "nose"],  # one short: the last falls back too
    )
    assert list(groups) == ["mouth", "eyes", "brows", "cheeks", "nose", "other"]
    assert groups["mouth"] == ["jawOpen", "tongueOut"] and groups["brows"] == ["browInnerUp"]
    assert groups["cheeks"] == ["cheekPuff"] and groups["nose"] == ["noseSneerLeft", "snarl"]
    assert names.group_by_region(["jawOpen"]) == {"mouth": ["jawOpen"]}


def test_eigen_names_sort_in_order() -> None:
    keys = [names.eigen_name(i) for i in (0, 2, 10, 99)]
    assert keys == sorted(keys) == ["eigen000", "eigen002", "eigen010", "eigen099"]


@pytest.mark.skipif(importlib.util.find_spec("t2bs") is None, reason="the backend is not installed here")
def test_agrees_with_the_backend() -> None:
    from t2bs import expressions

    assert names.ARKIT_NAMES == expressions.ARKIT_NAMES
    assert names.REGIONS == expressions.REGIONS
    assert tuple(e.name for e in expressions.LIBRARY) == names.EXPRESSION_ACTS
    assert names.PREVIEW_EXPRESSIONS == expressions.PREVIEW_EXPRESSIONS
    for entry in expressions.LIBRARY:
        for shape in entry.shape_names:
            assert names.region_of(shape) == expressions.shape_region(shape), shape
            for style in ("pascal", "ict"):
                written = expressions.NAME_STYLES[style](shape)
                assert names.canonical_name(written) == expressions.canonical_name(written) == shape
