"""One registry per swappable family: stable lowercase names mapped to classes (or factories).

A family (spatial-temporal block, fusion matrix, region strategy, backbone, dataset ...) owns one
``Registry``. A variant is one small file with one decorator::

    BLOCKS = Registry("block", contract="Block(channels: int, num_segments: int) -> nn.Module, "
                      "(N*T, C, H, W) -> (N*T, C, H, W)", required_args=("channels", "num_segments"))

    @BLOCKS.register("s_block")
    class SBlock(nn.Module):
        def __init__(self, channels: int, num_segments: int): ...

    block = BLOCKS.build("s_block", channels=256, num_segments=8)

Rules (DESIGN.md): a duplicate name is an error; an unknown name is an error that lists the known names
and the closest match; names are lowercase identifiers; every registered object meets the family's
contract (a base class and constructor arguments), checked when it registers.

Variants from other packages (``ean.plugins`` entry points, :mod:`ean.plugins`) are loaded the first time
any registry is looked up, so a lookup sees them wherever it runs (driver, Ray worker, notebook).
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class RegistryError(ValueError):
    """Base class of the registry's errors (a ``ValueError``, so callers may catch either)."""


class UnknownNameError(RegistryError, LookupError):
    """Raised for a name the registry does not hold; the message lists the valid names."""

    def __init__(self, family: str, name: object, known: list[str]):
        self.family, self.name, self.known = family, name, known
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        valid = ", ".join(known) if known else "(none registered)"
        super().__init__(f"unknown {family} '{name}'.{hint} Valid {family} names: {valid}.")
        self.suggestion = close[0] if close else None


class DuplicateNameError(RegistryError):
    """Raised when a name is registered twice in one family."""


class ContractError(RegistryError):
    """Raised when a registered object does not meet its family's contract."""


class Registry:
    """Maps stable lowercase names to the classes (or factory functions) of one swappable family.

    Args:
        family: what the registry holds, singular and lowercase (``"block"``, ``"fusion"``); used in errors.
        contract: one or two sentences every variant meets: constructor arguments, tensor shapes.
        required_args: keyword arguments every variant's constructor must accept (checked at registration).
        base: a class every registered class must subclass (checked at registration); ``None`` for none.
    """

    def __init__(self, family: str, contract: str, required_args: tuple[str, ...] = (), base: type | None = None):
        if not _NAME.match(family):
            raise RegistryError(f"registry family must be a lowercase identifier, got {family!r}")
        self.family = family
        self.contract = contract
        self.required_args = tuple(required_args)
        self.base = base
        self._entries: dict[str, Callable[..., Any]] = {}
        self._same_as: dict[str, tuple[str, dict[str, Any]]] = {}

    # -- registration -------------------------------------------------------------------------------
    def register(self, name: str, same_as: tuple[str, dict[str, Any]] | None = None) -> Callable[[T], T]:
        """Class (or function) decorator that registers the object under ``name``.

        Args:
            name: the variant's registry name.
            same_as: ``(other name, fixed options)`` when the variant is another registered one with some
                options fixed (the Incep-Block is the EAB with ``fusion="identity"``): both then name one
                network (``canonical``), so a trial key does not tell them apart.
        """

        def decorator(obj: T) -> T:
            self.add(name, obj, same_as)
            return obj

        return decorator

    def add(self, name: str, obj: Callable[..., Any], same_as: tuple[str, dict[str, Any]] | None = None) -> None:
        """Registers ``obj`` under ``name`` after checking the name and the family's contract."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise RegistryError(
                f"{self.family} name must be a lowercase identifier (letters, digits, '_'), got {name!r}"
            )
        if name in self._entries:
            raise DuplicateNameError(
                f"{self.family} '{name}' is already registered (by {_qualname(self._entries[name])}); "
                f"cannot register {_qualname(obj)} under the same name"
            )
        self._check_contract(name, obj)
        if same_as is not None:
            if same_as[0] not in self._entries:  # no lookup (and so no plugin loading) while variants register
                raise UnknownNameError(self.family, same_as[0], sorted(self._entries))
            self._same_as[name] = (same_as[0], dict(same_as[1]))
        self._entries[name] = obj

    def _check_contract(self, name: str, obj: Any) -> None:
        if not callable(obj):
            raise ContractError(f"{self.family} '{name}': {obj!r} is not a class or function")
        if self.base is not None and not (inspect.isclass(obj) and issubclass(obj, self.base)):
            raise ContractError(f"{self.family} '{name}': {_qualname(obj)} must subclass {self.base.__name__}")
        if not self.required_args:
            return
        params = inspect.signature(obj).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        missing = [a for a in self.required_args if a not in params]
        if missing:
            raise ContractError(
                f"{self.family} '{name}': {_qualname(obj)} does not accept {', '.join(missing)}. "
                f"Contract: {self.contract}"
            )

    # -- lookup -------------------------------------------------------------------------------------
    def get(self, name: str) -> Callable[..., Any]:
        """Returns the object registered under ``name``; raises ``UnknownNameError`` listing valid names."""
        _load_plugins()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(self.family, name, self.names()) from None

    def build(self, name: str, /, **kwargs: Any) -> Any:
        """Calls the object registered under ``name`` with keyword arguments."""
        return self.get(name)(**kwargs)

    def canonical(self, name: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The one name and options of the variant ``name`` called with ``options`` (see ``register``'s same_as).

        Returns:
            ``(name, options)`` unchanged for a variant of its own, else the variant it is the same as, with
            the fixed options added.
        """
        self.check(name)
        while name in self._same_as:
            name, fixed = self._same_as[name]
            options = {**options, **fixed}
        return name, options

    def names(self) -> list[str]:
        """The registered names, sorted."""
        _load_plugins()
        return sorted(self._entries)

    def check(self, name: object) -> None:
        """Raises ``UnknownNameError`` unless ``name`` is registered (validation without building)."""
        _load_plugins()
        if name not in self._entries:
            raise UnknownNameError(self.family, name, self.names())

    def __contains__(self, name: object) -> bool:
        _load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        _load_plugins()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, names={self.names()})"

    # -- tests ------------------------------------------------------------------------------------
    @contextmanager
    def temporarily(self, name: str, obj: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
        """Registers ``obj`` for the duration of a ``with`` block (for tests), then removes it."""
        self.add(name, obj)
        try:
            yield obj
        finally:
            self._entries.pop(name, None)
            self._same_as.pop(name, None)


def _load_plugins() -> None:
    """Loads the ``ean.plugins`` entry points once per process (a no-op afterwards and while they load)."""
    from ean.plugins import load_plugins  # here, not at the top: ean.plugins imports this module

    load_plugins()


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", "?")
    return f"{module}.{getattr(obj, '__qualname__', repr(obj))}"
