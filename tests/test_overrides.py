"""``config.with_overrides``: the benchmarks' ``--set NAME=VALUE`` on a dataclass."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from monohand.config import with_overrides


@dataclass
class _Settings:
    steps: int = 20
    weight: float = 0.25
    frame: str = "free"
    two_starts: bool = True


def test_values_take_their_fields_types_and_the_rest_stays():
    got = with_overrides(_Settings(), ["steps=40", "weight=1", "two_starts=False", "frame=camera"])
    assert got == _Settings(steps=40, weight=1.0, frame="camera", two_starts=False)
    assert type(got.weight) is float and type(got.steps) is int
    assert with_overrides(_Settings(), []) == _Settings()


@pytest.mark.parametrize("item, words", [("wieght=1", "wieght"), ("steps=abc", "abc"),
                                         ("two_starts=maybe", "maybe")])  # fmt: skip
def test_unknown_names_and_wrong_types_are_named(item, words):
    with pytest.raises(ValueError, match=words) as e:
        with_overrides(_Settings(), [item], what="--set")
    assert str(e.value).startswith("--set")
