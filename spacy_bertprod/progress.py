"""Progress for long commands: a tqdm bar on a terminal, nothing in logs and CI."""

from typing import Iterable, Optional, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], *, desc: str, unit: str = "doc", total: Optional[int] = None) -> Iterable[T]:
    from tqdm import tqdm

    # disable=None: tqdm turns itself off when stderr is not a TTY.
    return tqdm(items, desc=desc, unit=unit, total=total, disable=None, leave=False, mininterval=1.0)
