"""Progress for long commands: a tqdm bar on a terminal; in logs and CI, a line every `every` seconds.

A workflow's log (a project run, nohup, CI) is not a terminal, and a step that runs for twenty
minutes without a word cannot be told from a hung one, nor a step whose memory grows from one that
is fine. So when stderr is not a TTY, a line goes to stderr every `LOG_EVERY_S` seconds and at the
end: done / total, rate, time left and the process's resident memory.
"""

import os
import sys
import time
from typing import Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")

LOG_EVERY_S = 30.0


def progress(
    items: Iterable[T], *, desc: str, unit: str = "doc", total: Optional[int] = None, every: float = LOG_EVERY_S
) -> Iterable[T]:
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(items, desc=desc, unit=unit, total=total, leave=False, mininterval=1.0)
    return _logged(items, desc, unit, total, every)


def rss_gb() -> float:
    """This process's resident memory in GB (Linux /proc, else psutil where installed, else 0)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return 0.0
    return psutil.Process().memory_info().rss / 1e9


def progress_line(desc: str, done: int, total: Optional[int], seconds: float, unit: str = "doc") -> str:
    rate = done / seconds if seconds > 0 else 0.0
    count = f"{done:,}/{total:,}" if total else f"{done:,}"
    left = ""
    if total and rate > 0 and done < total:
        left = f", {_duration((total - done) / rate)} left"
    return f"[{desc}] {count} {unit}s, {rate:,.1f} {unit}s/s{left}, {_duration(seconds)} so far, RSS {rss_gb():.2f} GB"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def _logged(items: Iterable[T], desc: str, unit: str, total: Optional[int], every: float) -> Iterator[T]:
    started = last = time.perf_counter()
    done = logged = 0
    for item in items:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last >= every:
            last, logged = now, done
            print(progress_line(desc, done, total, now - started, unit), file=sys.stderr, flush=True)
    if done != logged and time.perf_counter() - started >= every:
        print(progress_line(desc, done, total, time.perf_counter() - started, unit), file=sys.stderr, flush=True)
