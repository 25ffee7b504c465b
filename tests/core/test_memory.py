"""release_memory hands freed heap pages back to the OS (glibc), so a long notebook kernel stays small."""
import gc
import sys

import pytest

from llmnb.core.memory import _cgroup_room, available_memory, release_memory

psutil = pytest.importorskip("psutil")


def glibc() -> bool:
    import ctypes

    try:
        return hasattr(ctypes.CDLL("libc.so.6"), "malloc_trim")
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux") or not glibc(), reason="malloc_trim is glibc's")
def test_freed_heap_blocks_go_back_to_the_os():
    process = psutil.Process()
    start = process.memory_info().rss
    blocks = [bytearray(64 * 1024) for _ in range(3000)]  # ~200 MB in blocks glibc keeps on its heap
    survivors = blocks[::50]  # a few survive all over the heap, so it cannot shrink from the top by itself
    del blocks
    gc.collect()
    held = process.memory_info().rss - start
    release_memory()
    after = process.memory_info().rss - start
    assert len(survivors) == 60
    assert held > 150e6, f"the allocator already returned the memory ({held / 1e6:.0f} MB held); the test proves nothing"
    assert after < held / 4, f"{held / 1e6:.0f} MB held before, {after / 1e6:.0f} MB after release_memory"



def fake_cgroup(tmp_path, files, membership):
    for relative, text in files.items():
        path = tmp_path / "cgroup" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "membership").write_text(membership)
    return str(tmp_path / "cgroup"), str(tmp_path / "membership")


def test_container_limit_is_seen_in_cgroup_v2(tmp_path):
    # A Binder-like session: 2 GiB limit, 1.5 GiB used -> 0.5 GiB of room, whatever the host has.
    root, membership = fake_cgroup(tmp_path, {"memory.max": f"{2 * 2**30}\n", "memory.current": f"{3 * 2**29}\n"}, "0::/\n")
    assert _cgroup_room(root, membership) == 2**29


def test_container_limit_is_seen_in_cgroup_v1_under_the_process_path(tmp_path):
    files = {"memory/memory.limit_in_bytes": "9223372036854771712\n", "memory/memory.usage_in_bytes": "5\n",  # the unlimited root
             "memory/job/7/memory.limit_in_bytes": f"{2**30}\n", "memory/job/7/memory.usage_in_bytes": f"{2**28}\n"}
    root, membership = fake_cgroup(tmp_path, files, "4:memory:/job/7\n1:cpu:/\n")
    assert _cgroup_room(root, membership) == 2**30 - 2**28


def test_no_limit_means_no_cgroup_room(tmp_path):
    root, membership = fake_cgroup(tmp_path, {"memory.max": "max\n", "memory.current": "123\n"}, "0::/\n")
    assert _cgroup_room(root, membership) is None
    assert available_memory() is None or available_memory() > 0
