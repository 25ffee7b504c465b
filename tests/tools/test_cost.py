"""llmnb.measure: wall and CPU time, and the peak memory of a block (not of the whole process)."""
import mmap
import sys
import time

import pytest

import llmnb
from llmnb.tools import cost as cost_module


def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def resident_block(megabytes):
    """Fresh pages straight from the kernel, every one touched: they add their full size to the
    resident set. (A bytearray may be carved from heap pages a long test session already holds
    resident, and then adds little; that made this file flaky in CI.)"""
    block = mmap.mmap(-1, megabytes * 1024 * 1024)
    for i in range(0, len(block), mmap.PAGESIZE):
        block[i] = 1
    return block


def test_times_a_block():
    with llmnb.measure() as cost:
        burn(0.2)
        time.sleep(0.1)
    # Lower bounds only: a busy machine makes a block take longer, never shorter.
    assert cost.seconds >= 0.3 and cost.cpu_seconds >= 0.2
    assert "s wall" in str(cost) and set(cost.as_dict()) >= {"seconds", "cpu_seconds", "peak_rss_mb", "added_rss_mb"}


def test_wall_time_and_cpu_time_come_from_their_own_clocks(monkeypatch):
    # Clocks that move only when told: the block computes for 0.2 s and waits 0.1 s.
    wall, cpu = [1000.0], [50.0]
    monkeypatch.setattr(time, "perf_counter", lambda: wall[0])
    monkeypatch.setattr(time, "process_time", lambda: cpu[0])
    with llmnb.measure() as cost:
        wall[0] += 0.3
        cpu[0] += 0.2
    assert cost.seconds == pytest.approx(0.3) and cost.cpu_seconds == pytest.approx(0.2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux-only")
def test_peak_is_the_block_s_own_not_the_process_s():
    resident_block(200).close()  # a peak before the block...
    with llmnb.measure() as cost:
        resident_block(40).close()
    assert cost.peak_rss_mb is not None and cost.method in ("VmHWM", "sampled")
    assert 30 <= cost.added_rss_mb < 150, cost  # ...is not counted; the block's 40 MB is


def test_sampling_fallback_sees_a_peak(monkeypatch):
    if cost_module.resident_mb() is None:
        pytest.skip("no way to read the resident size here (no /proc, no psutil)")
    monkeypatch.setattr(cost_module, "_reset_high_water_mark", lambda: False)
    with llmnb.measure(interval=0.001) as cost:
        block = resident_block(60)
        time.sleep(0.2)  # many samples while it is resident, even on a busy machine
        block.close()
    assert cost.method == "sampled"
    assert cost.added_rss_mb >= 40, cost


def test_exceptions_pass_through_and_numbers_are_kept():
    with pytest.raises(KeyError):
        with llmnb.measure() as cost:
            time.sleep(0.2)
            raise KeyError("x")
    assert cost.seconds >= 0.2  # the block's time was still measured


def test_bad_interval():
    with pytest.raises(ValueError, match="interval"):
        llmnb.measure(interval=0)
