"""Secrets during a walk: which values were revealed, masking them, sealing them at rest.

A value counts as revealed once a template rendered ``secret()``, a SECRET
input or resume value was opened, or a stored value was found sealed. From
then on it is masked in every log line and sealed in every stored output.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controlplane.services.masking import mask_text, secret_variants
from controlplane.services.sealing import is_sealed
from controlplane.store.text import escape_nul


@dataclass
class Secrets:
    """The revealed secrets of one execution, and how to seal, open and mask them."""

    # Decrypts one namespace secret on demand; None when the key is unknown.
    reveal_secret: Callable[[str], str | None] = lambda _key: None
    # Opens SECRET inputs and resume values sealed at rest (services.sealing).
    unseal: Callable[[Any], Any] = lambda value: value
    # Seals one string to the server's key (outputs that carry a secret).
    seal: Callable[[str], Any] = lambda value: value
    revealed: set[str] = field(default_factory=set)
    # Every form of every revealed secret that log lines are masked for.
    variants: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, values: set[str]) -> None:
        """Treat ``values`` as secrets from now on: masked in logs, sealed in outputs."""
        values = {v for v in values if v}
        with self._lock:
            new = values - self.revealed
            self.revealed |= new
            for value in new:
                self.variants |= secret_variants(value)

    def lookup(self, key: str) -> str | None:
        """The namespace secret ``key``, revealed from now on (``secret()`` in templates)."""
        value = self.reveal_secret(key)
        if value:
            self.add({value})
        return value

    def open(self, value: Any) -> Any:
        """``value`` unsealed; an opened string is masked from then on."""
        opened = self.unseal(value)
        if isinstance(opened, str) and opened:
            self.add({opened})
        return opened

    def carries(self, value: Any) -> bool:
        """Whether ``value`` (or anything inside it) contains a revealed secret."""
        if isinstance(value, str):
            return any(secret in value for secret in self.revealed)
        if isinstance(value, dict):
            return any(self.carries(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(self.carries(v) for v in value)
        return False

    def for_storage(self, value: Any) -> Any:
        """``value`` ready to store: strings that carry a revealed secret sealed, NUL escaped.

        A secret passed on through an output stays a secret: it is stored
        sealed (the API and UI show the mask) and opened again for later tasks.
        """
        if isinstance(value, str):
            return self.seal(value) if self.carries(value) else escape_nul(value)
        if isinstance(value, dict):
            return {escape_nul(k): self.for_storage(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.for_storage(v) for v in value]
        return value

    def mask(self, value: Any) -> Any:
        """``value`` with every revealed secret, and its common encodings, masked."""
        if isinstance(value, str):
            return mask_text(value, self.variants)
        if isinstance(value, dict):
            return {k: self.mask(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        return value


def sealed_values(values: list[Any]) -> list[Any]:
    """Every sealed value found inside ``values`` (dicts and lists are walked)."""
    found: list[Any] = []
    stack = list(values)
    while stack:
        value = stack.pop()
        if is_sealed(value):
            found.append(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found
