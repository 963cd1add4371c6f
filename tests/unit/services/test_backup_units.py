"""Backup pieces without peers: schedules, segment layout, the Transporter's per-disk state, the gate."""

from __future__ import annotations

import asyncio
import datetime as dt
import os

import pytest

from tenantry.backup.layout import SEGMENT, segment_count, segment_name, split_datastore_path
from tenantry.backup.restore import BATCH, batch_sizes
from tenantry.common.memory import FILE_WRITE, write_file
from tenantry.director.backups.models import JobSpec, RepositorySpec, Retention
from tenantry.director.backups.schedule import Schedule, ScheduleError
from tenantry.director.repository.manager import Gate
from tenantry.transporter.backup.source import DiskState


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def test_cron_fields_and_matching() -> None:
    s = Schedule.parse("0 2 * * *")
    assert s.matches(dt.datetime(2026, 12, 3, 2, 0, tzinfo=dt.UTC))
    assert not s.matches(dt.datetime(2026, 12, 3, 2, 1, tzinfo=dt.UTC))
    assert s.due(_ts("2026-12-03T01:59:30"), _ts("2026-12-03T02:00:10"))
    assert not s.due(_ts("2026-12-03T02:00:10"), _ts("2026-12-03T02:30:00"))
    assert s.next_after(_ts("2026-12-03T02:00:00")) == _ts("2026-12-04T02:00:00")
    steps = Schedule.parse("*/15 8-17 * * 1-5")
    assert steps.matches(dt.datetime(2026, 12, 4, 8, 45, tzinfo=dt.UTC))  # a Friday
    assert not steps.matches(dt.datetime(2026, 12, 5, 8, 45, tzinfo=dt.UTC))  # Saturday
    sunday = Schedule.parse("30 3 * * 7")
    assert sunday.matches(dt.datetime(2026, 12, 6, 3, 30, tzinfo=dt.UTC))
    either = Schedule.parse("0 0 1 * 1")  # the 1st, or a Monday (cron's rule when both are restricted)
    assert either.matches(dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC))
    assert either.matches(dt.datetime(2026, 12, 7, 0, 0, tzinfo=dt.UTC))
    assert not either.matches(dt.datetime(2026, 12, 8, 0, 0, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("61 * * * *", "minute field '61' is outside 0-59"),
        ("* * *", "expected 5 fields"),
        ("a * * * *", "minute field 'a' is not a number"),
        ("*/0 * * * *", "outside 0-59"),
        ("0 0 0 * *", "day of month field '0' is outside 1-31"),
    ],
)
def test_bad_schedules_say_why(text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        Schedule.parse(text)


def test_job_and_repository_models() -> None:
    job = JobSpec.model_validate({"vms": ["a", "b"], "schedule": " 0  2 * * * ", "retention": {"keep_daily": 7}})
    assert job.schedule == "0 2 * * *" and job.retention.flags() == {"daily": 7}
    with pytest.raises(ValueError, match="listed twice"):
        JobSpec.model_validate({"vms": ["a", "a"]})
    with pytest.raises(ValueError, match="hour field"):
        JobSpec.model_validate({"vms": ["a"], "schedule": "0 24 * * *"})
    with pytest.raises(ValueError):
        JobSpec.model_validate({"vms": ["a"], "surprise": 1})
    assert Retention().flags() == {}
    assert RepositorySpec.model_validate({}).check_subset == "5%"
    with pytest.raises(ValueError):
        RepositorySpec.model_validate({"check_subset": "5% ; rm -rf /"})


def test_segments_cover_the_disk_in_name_order() -> None:
    size = 3 * SEGMENT + 12345
    assert segment_count(size) == 4
    names = [segment_name(i) for i in range(600)]
    assert names == sorted(names) and names[256] == "0001/00000256"
    assert split_datastore_path("[site-ds-01] vm/vm.vmdk") == ("site-ds-01", "vm/vm.vmdk")
    with pytest.raises(ValueError):
        split_datastore_path("vm/vm.vmdk")


@pytest.mark.parametrize("count", [0, 1, 8, 9, 16, 17, 72, 80, 81, 96, 136, 144, 145, 1024, 1025])
def test_restore_batches_start_and_end_small(count: int) -> None:
    sizes = batch_sizes(count)
    assert sum(sizes) == count and all(0 < s <= BATCH for s in sizes)
    if count > 8:
        assert sizes[0] == 8 and sizes[-1] <= 8  # the upload starts early and its tail waits little
    assert batch_sizes(1024) == [8] + [256] * 3 + [240, 8]


def test_disk_state_round_trips_compactly() -> None:
    state = DiskState(8 * SEGMENT, "uuid/3", [5] * 6 + [7, 5], [f"h{i}" for i in range(8)])
    data = state.to_json()
    assert data["mtimes"] == [[5, 6], [7, 1], [5, 1]]
    again = DiskState.from_json(data)
    assert again == state


def test_gate_keeps_maintenance_apart_from_jobs() -> None:
    async def main() -> list[str]:
        gate = Gate()
        log: list[str] = []

        async def job(name: str, hold: float) -> None:
            async with gate.shared():
                log.append(f"{name} in")
                await asyncio.sleep(hold)
                log.append(f"{name} out")

        async def maintenance() -> None:
            await asyncio.sleep(0.01)
            async with gate.exclusive():
                log.append("maint in")
                await asyncio.sleep(0.02)
                log.append("maint out")

        async def late_job() -> None:
            await asyncio.sleep(0.02)  # arrives while maintenance waits: goes after it
            await job("late", 0)

        await asyncio.gather(job("a", 0.05), job("b", 0.05), maintenance(), late_job())
        return log

    log = asyncio.run(main())
    assert log.index("maint in") > max(log.index("a out"), log.index("b out"))
    assert log.index("late in") > log.index("maint out")


def test_file_writes_come_in_small_pieces_and_lose_nothing(tmp_path, monkeypatch) -> None:
    """Staged segments and repository files are written in pieces of at most FILE_WRITE bytes (a larger
    write takes large page-cache folios, which this kind of VM pays for dearly); short writes are resumed."""
    data = os.urandom(4 * FILE_WRITE + 12345)
    sizes: list[int] = []
    real_write = os.write

    def recording_write(fd: int, buf: memoryview) -> int:
        sizes.append(len(buf))
        # Every third call the kernel takes only part of it, as a full pipe or a signal would make it.
        return real_write(fd, buf[: len(buf) // 2] if len(sizes) % 3 == 0 else buf)

    monkeypatch.setattr(os, "write", recording_write)
    path = tmp_path / "segment"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        write_file(fd, data)
    finally:
        os.close(fd)
    assert max(sizes) == FILE_WRITE
    assert path.read_bytes() == data
    # The third call was cut short: every byte arrived all the same, so the rest of it was written again.
    assert len(sizes) >= 3
