"""Peak resident memory of every process of the stack, sampled in a background thread."""

from __future__ import annotations

import threading

import psutil


class RssSampler:
    """Samples the RSS of each root process and all its descendants every `interval` s.

    Roots are named ("web", "worker 1", ...); a descendant gets its root's name plus a
    number (gunicorn's workers, RQ's scheduler process).
    """

    def __init__(self, roots: dict[str, int], interval: float = 0.25) -> None:
        self.roots = roots
        self.interval = interval
        self.peaks: dict[str, int] = {}
        self._labels: dict[int, str] = {}
        self._children: dict[str, int] = {}
        self.cpu: dict[str, float] = {}  # CPU seconds used since sampling started
        self._cpu_first: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss", daemon=True)

    def sample(self) -> None:
        for root, pid in self.roots.items():
            try:
                proc = psutil.Process(pid)
                family = [proc, *sorted(proc.children(recursive=True), key=lambda p: p.pid)]
            except psutil.Error:
                continue
            for member in family:
                if member.pid not in self._labels:
                    if member.pid == pid:
                        self._labels[pid] = root
                    else:
                        self._children[root] = self._children.get(root, 0) + 1
                        self._labels[member.pid] = f"{root} child {self._children[root]}"
                try:
                    with member.oneshot():
                        rss = member.memory_info().rss
                        times = member.cpu_times()
                except psutil.Error:
                    continue
                label = self._labels[member.pid]
                self.peaks[label] = max(self.peaks.get(label, 0), rss)
                cpu = times.user + times.system
                self._cpu_first.setdefault(member.pid, cpu)
                self.cpu[label] = cpu - self._cpu_first[member.pid]

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        self.sample()
        return dict(self.peaks)


def other_cpu_percent(exclude: set[int], seconds: float = 1.0) -> float:
    """CPU used by processes not in `exclude` over `seconds` (100 = one core busy)."""
    procs = []
    for proc in psutil.process_iter():
        if proc.pid in exclude:
            continue
        try:
            proc.cpu_percent(None)
            procs.append(proc)
        except psutil.Error:
            continue
    threading.Event().wait(seconds)
    total = 0.0
    for proc in procs:
        try:
            total += proc.cpu_percent(None)
        except psutil.Error:
            continue
    return total
