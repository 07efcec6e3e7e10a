"""Fixed, stratified dev splits and stratified subsets (same seed -> same split)."""

import random
from collections import defaultdict
from typing import Callable, List, Sequence, Tuple, TypeVar

from ..errors import InvalidInput

T = TypeVar("T")


def stratified_split(items: Sequence[T], key: Callable[[T], str], share: float, seed: int) -> Tuple[List[T], List[T]]:
    """(rest, held out): `share` of each stratum, at least one item of each, held out."""
    if not 0.0 < share < 1.0:
        raise InvalidInput(f"The dev share must be between 0 and 1, not {share}.")
    by_key = defaultdict(list)
    for item in items:
        by_key[key(item)].append(item)
    rng = random.Random(seed)
    rest, held = [], []
    for stratum in sorted(by_key):
        group = by_key[stratum][:]
        rng.shuffle(group)
        n_held = max(1, round(len(group) * share)) if len(group) > 1 else 0
        held += group[:n_held]
        rest += group[n_held:]
    rng.shuffle(rest)
    return rest, held


def stratified_subset(items: Sequence[T], key: Callable[[T], str], limit: int, seed: int) -> List[T]:
    """About `limit` items with every stratum represented (for smoke runs); all if limit is 0."""
    if not limit or limit >= len(items):
        return list(items)
    kept, _ = stratified_split(items, key, 1 - limit / len(items), seed)
    return kept
