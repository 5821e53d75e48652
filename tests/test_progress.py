"""Progress on a terminal (a bar with points) and in a log (a line every 10 points or 60 s)."""
import io

from underspec.base.progress import Output, Progress, Tally


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def lines(buf: io.StringIO) -> list[str]:
    return [ln for ln in buf.getvalue().splitlines() if ln]


def test_without_a_tty_a_line_every_ten_points_with_the_facts():
    buf, clock = io.StringIO(), Clock()
    out = Output(buf, tty=False, clock=clock)
    with Progress("sweep demo", Tally(27 * 5, "model-epoch"), Tally(27, "points"), out) as p:
        for i in range(27):
            clock.t += 2.0
            p.update(5, points=1)
            if i == 8:
                assert lines(buf) == []  # 9 points, 18 s: nothing yet
    out = lines(buf)
    assert out[0] == "sweep demo: 10/27 points, 50/135 model-epochs, elapsed 00:20, ETA 00:34"
    assert out[1].startswith("sweep demo: 20/27 points, 100/135 model-epochs, elapsed 00:40")
    assert out[2] == "sweep demo: 27/27 points, 135/135 model-epochs, elapsed 00:54, ETA 00:00"  # at close
    assert len(out) == 3


def test_without_a_tty_a_line_after_sixty_seconds_without_ten_points():
    buf, clock = io.StringIO(), Clock()
    p = Progress("train", Tally(100, "model-epoch"), Tally(2, "runs"), Output(buf, tty=False, clock=clock))
    clock.t += 59.0
    p.update(1)
    assert lines(buf) == []
    clock.t += 1.0
    p.update(1)
    assert lines(buf) == ["train: 0/2 runs, 2/100 model-epochs, elapsed 01:00, ETA 49:00"]
    p.close()
    assert len(lines(buf)) == 1  # nothing changed since: no repeated last line


def test_points_found_done_elsewhere_leave_the_rate_alone():
    buf, clock = io.StringIO(), Clock()
    p = Progress("sweep s", Tally(40, "model-epoch"), Tally(4, "points", done=1), Output(buf, tty=False, clock=clock))
    p.skip(10, points=1)  # a point already in the store: 10 model-epochs off the total
    clock.t += 10.0
    p.update(10, points=1)
    assert p.line() == "sweep s: 3/4 points, 10/30 model-epochs, elapsed 00:10, ETA 00:20"


def test_on_a_tty_a_bar_with_points_done_and_total():
    buf = io.StringIO()
    with Progress("sweep demo", Tally(10, "model-epoch"), Tally(2, "points"), Output(buf, tty=True)) as p:
        p.update(5, points=1)
        p.update(5, points=1)
    out = buf.getvalue()
    assert "\r" in out and "10/10" in out and "2/2 points" in out and "model-epoch" in out


def test_units_start_at_zero_and_points_are_optional():
    buf, clock = io.StringIO(), Clock()
    p = Progress("fetch", Tally(4, "file"), out=Output(buf, tty=False, clock=clock))
    p.update(4)
    assert p.line() == "fetch: 4/4 files, elapsed 00:00, ETA 00:00"
    try:
        Progress("x", Tally(4, "file", done=1), out=Output(buf, tty=False))
    except ValueError as exc:
        assert "units.done=1" in str(exc)
    else:
        raise AssertionError("units.done accepted")
