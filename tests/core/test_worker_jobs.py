"""The worker's loop (powernode.jobs.run_forever): each job at its interval, again at once while it has more,
backing off (doubling, capped) while it fails, and a job that raises does not stop the others. The clock is
the test's: the loop's waits advance it, so the schedule is exact and nothing sleeps."""

from __future__ import annotations

import threading

from powernode.jobs import Job, JobRun, run_forever


class FakeTime(threading.Event):
    """A stop event whose wait() advances a fake clock instead of sleeping; set after ``until`` seconds."""

    def __init__(self, until: float) -> None:
        super().__init__()
        self.now = 0.0
        self.until = until

    def clock(self) -> float:
        return self.now

    def wait(self, timeout: float | None = None) -> bool:
        self.now += timeout or 0.0
        if self.now >= self.until:
            self.set()
        return self.is_set()


def _run(jobs: tuple[Job, ...], until: float, max_backoff_s: float) -> dict[str, list[float]]:
    fake = FakeTime(until)
    runs: dict[str, list[float]] = {job.name: [] for job in jobs}
    run_forever(
        jobs,
        stop=fake,
        max_backoff_s=max_backoff_s,
        on_run=lambda job, result: runs[job.name].append(round(fake.now, 3)),
        clock=fake.clock,
    )
    return runs


def test_interval_backoff_and_more() -> None:
    backlog = iter([True, True, False])

    def failing() -> JobRun:
        return JobRun(failed=True, error="Vault down")

    def raising() -> JobRun:
        raise RuntimeError("a bug in a job")

    jobs = (
        Job("steady", lambda: JobRun(counts={"n": 1}), lambda: 10.0),
        Job("failing", failing, lambda: 1.0),
        Job("raising", raising, lambda: 100.0),
        Job("backlog", lambda: JobRun(more=next(backlog, False)), lambda: 30.0),
        Job("off", lambda: JobRun(), lambda: 0.0),
    )
    runs = _run(jobs, until=45.0, max_backoff_s=8.0)
    assert runs["steady"] == [0.0, 10.0, 20.0, 30.0, 40.0]
    # 1 s interval failing: waits 2, 4, 8, then capped at 8
    assert runs["failing"] == [0.0, 2.0, 6.0, 14.0, 22.0, 30.0, 38.0]
    assert runs["raising"] == [0.0]  # failed (logged), next try after min(100 * 2, max(8, 100)) = 100 s
    assert runs["backlog"] == [0.0, 0.0, 0.0, 30.0]  # "more" runs again at once, then the interval
    assert runs["off"] == []


def test_a_failing_job_recovers_its_interval_after_a_success() -> None:
    answers = iter([True, True, False, False, False])
    job = Job("flaky", lambda: JobRun(failed=next(answers, False)), lambda: 1.0)
    runs = _run((job,), until=12.0, max_backoff_s=60.0)
    assert runs["flaky"] == [0.0, 2.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
