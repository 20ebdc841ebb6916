"""The one shape of everything chosen by name: lossy coders, index coders and comparison
methods. An entry is an id, a class named by import path (imported only when first used), the
pip requirement of the third-party package it needs (named when that package is missing), and
tags (e.g. "paper"); the class reports its version (`library_version()`). Registering a new one
is one `register` call beside the others (numcodecs' register_codec is the model)."""
import importlib
from dataclasses import dataclass

from .errors import DeepSZError


@dataclass(frozen=True)
class Entry:
    id: str
    target: str                  # "package.module:Class"
    requirement: str = ""        # pip requirement of the third-party package the class needs
    tags: frozenset = frozenset()


class Registry:
    """Entries of one kind ("lossy codec", "index codec", "method") in registration order;
    `error` is the DeepSZError subclass raised for an unknown id or a missing package."""

    def __init__(self, kind: str, error: type[DeepSZError]):
        self.kind, self.error, self._entries = kind, error, {}

    def register(self, id: str, target: str, requirement: str = "", *, tags=()) -> None:
        if id in self._entries:
            raise ValueError(f"{self.kind} {id!r} is registered already")
        if ":" not in target:
            raise ValueError(f"{self.kind} {id!r}: target must be 'module:Class', got {target!r}")
        self._entries[id] = Entry(id, target, requirement, frozenset(tags))

    def ids(self, tag: str | None = None) -> tuple[str, ...]:
        return tuple(i for i, e in self._entries.items() if tag is None or tag in e.tags)

    def __contains__(self, id) -> bool:
        return id in self._entries

    def entry(self, id: str) -> Entry:
        if id not in self._entries:
            raise self.error(f"unknown {self.kind} {id!r}; valid: {', '.join(self._entries)}")
        return self._entries[id]

    def load(self, id: str) -> type:
        """The entry's class, its module imported now; a missing third-party package is named
        with the pip command that installs it."""
        entry = self.entry(id)
        module, _, attr = entry.target.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:
            if e.name is not None and e.name.startswith("deepsz_caffe"):
                raise
            raise self.error(f"{self.kind} {id!r} needs a missing package: "
                             f"pip install {entry.requirement or e.name}") from e

    def create(self, id: str):
        """An instance of the entry's class (made with no arguments)."""
        return self.load(id)()

    def version(self, id: str) -> str:
        """What the entry's class reports as the version of the library behind it."""
        return self.create(id).library_version()
