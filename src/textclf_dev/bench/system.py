"""The machine the benchmarks ran on, and memory read from ``/proc`` (Linux; no psutil needed).

Nothing here imports torch or onnxruntime: versions come from the installed distributions, the
GPU from ``nvidia-smi``, so describing the machine costs no memory in the benchmark process.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

PROC = Path("/proc")
PACKAGES = (
    "torch",
    "onnxruntime",
    "onnxruntime-gpu",
    "transformers",
    "lightning",
    "bentoml",
    "dvc",
)


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, else what :mod:`platform` knows."""
    cpuinfo = PROC / "cpuinfo"
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def gpus() -> list[str]:
    """Names of the NVIDIA GPUs ``nvidia-smi`` lists; empty when there is none (or no driver)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return (
        [line.strip() for line in out.stdout.splitlines() if line.strip()]
        if out.returncode == 0
        else []
    )


def versions() -> dict[str, str]:
    """Versions of Python and the installed packages that decide the figures."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def memory_total_mb() -> float | None:
    """Physical memory of the machine (MiB), from /proc/meminfo."""
    status = _status_fields(PROC / "meminfo")
    return status.get("MemTotal")


def hardware() -> dict[str, Any]:
    """CPU model, cores, memory, GPUs and package versions: the context of every figure."""
    found_gpus = gpus()
    return {
        "cpu": cpu_model(),
        "cores": cpu_count(),
        "logical_cpus": os.cpu_count(),
        "memory_mb": memory_total_mb(),
        "gpus": found_gpus,
        "gpu": ", ".join(found_gpus) if found_gpus else "no GPU",
        "platform": platform.platform(),
        "versions": versions(),
    }


def _status_fields(path: Path) -> dict[str, float]:
    """``Key: <n> kB`` lines of a /proc status-like file, in MiB."""
    fields: dict[str, float] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:  # the process exited, or no /proc on this system
        return fields
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            fields[key.strip()] = int(parts[0]) / 1024
    return fields


def self_peak_rss_mb() -> float:
    """This process's peak resident memory (MiB): VmHWM, else ``getrusage`` (no /proc)."""
    peak = _status_fields(PROC / "self" / "status").get("VmHWM")
    if peak is not None:
        return round(peak, 1)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
    return round(maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def _children(pid: int) -> list[int]:
    found = []
    for entry in PROC.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            after = entry.read_text(encoding="utf-8", errors="replace").rpartition(")")[2]
        except OSError:
            continue
        fields = after.split()
        if len(fields) > 1 and fields[1] == str(pid):
            found.append(int(entry.parent.name))
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (read from /proc/<pid>/stat)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(_children(current))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system, seconds) that ``pid``'s process tree has used so far.

    Read from /proc/<pid>/stat of each live member; a member that exited takes its time with it.
    """
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for member in process_tree(pid):
        try:
            after = (PROC / str(member) / "stat").read_text(encoding="utf-8").rpartition(")")[2]
        except OSError:
            continue  # exited meanwhile
        fields = after.split()  # state is fields[0]: utime and stime are fields 14 and 15 of stat
        total += int(fields[11]) + int(fields[12])
    return total / tick


def tree_memory(pid: int) -> dict[str, Any]:
    """Resident memory of ``pid``'s process tree: current (VmRSS) and peak (VmHWM), summed.

    Pages shared between processes count once per process, so the sums are upper bounds.
    """
    processes: list[dict[str, Any]] = []
    for member in process_tree(pid):
        status = _status_fields(PROC / str(member) / "status")
        if "VmRSS" not in status:
            continue  # exited meanwhile, or a kernel thread
        try:
            cmd = (
                (PROC / str(member) / "cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode("utf-8", "replace")
                .strip()
            )
        except OSError:
            cmd = ""
        processes.append(
            {
                "pid": member,
                "rss_mb": round(status["VmRSS"], 1),
                "peak_rss_mb": round(status.get("VmHWM", status["VmRSS"]), 1),
                "cmd": cmd[:160],
            }
        )
    return {
        "processes": len(processes),
        "rss_mb": round(sum(p["rss_mb"] for p in processes), 1),
        "peak_rss_mb": round(sum(p["peak_rss_mb"] for p in processes), 1),
        "per_process": processes,
    }
