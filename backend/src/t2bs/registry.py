"""Name -> class registries for providers and pipelines.

A provider is chosen by a spec string: a bare name (``procedural``) or a name with an argument after
the first colon (``mesh:/path/head.glb``, ``capture:./takes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import InputError

T = TypeVar("T")


def split_spec(spec: str) -> tuple[str, str | None]:
    """Split ``name:argument`` into its parts; the argument may itself contain colons."""
    name, sep, argument = spec.partition(":")
    return name.strip(), (argument if sep else None)


class Registry(Generic[T]):
    """A named set of factories; `kind` names the set in error messages ("asset provider")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise InputError(f"Unknown {self.kind} {name!r}; choose one of: {known}.") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
