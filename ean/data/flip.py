"""Horizontal flip and labels: which classes swap under a mirror, found from the class names.

A mirror turns "Pushing something from left to right" into "Pushing something from right to left". A class
is direction-sensitive when its name holds a mirrored word (left/right, leftwards/rightwards,
clockwise/counterclockwise). Its partner is the class whose name is the same with those words swapped. A
flipped sample of a paired class takes its partner's label; a direction-sensitive class without a partner
is never flipped (its flipped video would belong to no class); every other class flips freely.

That is the authors' code's rule (``flip_rule: swap``, with pairs found from the names instead of hard-coded).
The paper's text says direction classes are not flipped at all (``flip_rule: skip``: ``FlipLabels.skipping``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

#: How a flip treats direction-sensitive classes: swap a pair's labels (the authors' code), or skip them (the paper).
FLIP_RULES = ("swap", "skip")
MIRRORED_WORDS = {
    "left": "right",
    "right": "left",
    "leftward": "rightward",
    "rightward": "leftward",
    "leftwards": "rightwards",
    "rightwards": "leftwards",
    "clockwise": "counterclockwise",
    "counterclockwise": "clockwise",
    "anticlockwise": "clockwise",
    "counter-clockwise": "clockwise",
    "anti-clockwise": "clockwise",
}
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)?")


def _normalise(name: str) -> str:
    return " ".join(name.lower().replace("[", "").replace("]", "").split())


def mirror_name(name: str) -> str:
    """The class name as seen in a mirror (mirrored words swapped), normalised to lower case."""
    return _WORD.sub(lambda m: MIRRORED_WORDS.get(m.group(0), m.group(0)), _normalise(name))


@dataclass(frozen=True)
class FlipLabels:
    """What a horizontal flip does to each label.

    Attributes:
        pairs: label -> partner label, both directions (``pairs[a] == b`` and ``pairs[b] == a``).
        unflippable: direction-sensitive labels without a partner; samples of these are never flipped.
    """

    pairs: dict[int, int] = field(default_factory=dict)
    unflippable: frozenset[int] = frozenset()

    @classmethod
    def from_class_names(cls, class_names: Sequence[str]) -> FlipLabels:
        """Finds the pairs of a dataset from its class names (index = label)."""
        index = {_normalise(n): i for i, n in enumerate(class_names)}
        pairs, unflippable = {}, set()
        for label, name in enumerate(class_names):
            mirrored = mirror_name(name)
            if mirrored == _normalise(name):
                continue
            partner = index.get(mirrored)
            if partner is None:
                unflippable.add(label)
            else:
                pairs[label] = partner
        for label, partner in list(pairs.items()):  # keep the pairs symmetric ('anticlockwise' -> 'clockwise')
            pairs.setdefault(partner, label)
            unflippable.discard(partner)
        return cls(pairs=pairs, unflippable=frozenset(unflippable))

    def skipping(self) -> FlipLabels:
        """The paper's rule: no direction-sensitive class is flipped (its pairs become unflippable)."""
        return FlipLabels(pairs={}, unflippable=self.unflippable | frozenset(self.pairs))

    def can_flip(self, label: int) -> bool:
        """False for direction-sensitive labels without a partner."""
        return label not in self.unflippable

    def flipped(self, label: int) -> int:
        """The label of a horizontally flipped sample of class ``label``."""
        return self.pairs.get(label, label)
