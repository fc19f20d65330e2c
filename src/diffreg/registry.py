"""A tiny name -> factory registry: adding a method, loss or backbone is one decorator line."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._items[name] = factory
            return factory
        return deco

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise KeyError(f"unknown {self.kind} '{name}' (known: {known})") from None

    def build(self, name: str, *args, **kwargs) -> T:
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


class SettingsRegistry(Registry[T]):
    """A registry whose entries declare their settings with defaults when they register (figure
    functions, pretraining stages), so a plan can check a config without running the entry."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.settings: dict[str, dict] = {}

    def declare(self, name: str, settings: dict) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            self.register(name)(factory)
            self.settings[name] = dict(settings)
            return factory
        return deco

    def lookup(self, name: str) -> Callable[..., T]:
        """The entry, or one InputError line listing the known names."""
        if name not in self:
            raise InputError(f"unknown {self.kind} '{name}' (known: {', '.join(self.names()) or 'none'})")
        return self.get(name)

    def check_config(self, name: str, config: dict, where: str = "") -> dict:
        """`config` over the declared defaults of `name`; an unknown name or setting is an
        InputError prefixed by `where` (e.g. the YAML path of the entry)."""
        prefix = f"{where}: " if where else ""
        if name not in self:
            raise InputError(f"{prefix}unknown {self.kind} '{name}' (known: {', '.join(self.names())})")
        if not isinstance(config, dict):
            raise InputError(f"{prefix}settings of {self.kind} {name} must be a mapping, got {type(config).__name__}")
        known = self.settings[name]
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise InputError(f"{prefix}unknown setting(s) {', '.join(unknown)} for {self.kind} {name} "
                             f"(known: {', '.join(sorted(known))})")
        return {**known, **config}
