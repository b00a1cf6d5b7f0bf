"""The agent returns freed heap to the OS after each report (agent/memory.py)."""

from __future__ import annotations

from pathlib import Path

from agent.memory import release_freed_memory


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_freed_heap_goes_back_to_the_os() -> None:
    # 60 MB in 100 kB blocks (malloc heap: below glibc's mmap threshold, above pymalloc's
    # 512 bytes); every other block is freed, so the free space lies in holes between live
    # blocks that free() cannot give back by shrinking the heap's top
    blocks = [bytearray(100_000) for _ in range(600)]
    del blocks[::2]
    before = rss_kb()
    assert release_freed_memory()
    after = rss_kb()
    assert before - after > 15_000, (before, after)   # most of the 30 MB of holes returned
    assert len(blocks) == 300
