"""The live view's timer, over Streamlit's own protocol (bench/students.py's light student on a real server).

The browser drops every fragment timer when a whole-page run starts and gets it back only from an auto_rerun
message; a whole-page run's messages can be lost when runs pile up. So every run of the live view sends its
timer again, and a page that lost it gets it back with the next one."""

import re

from bench.students import LightStudents
from polling import wait_until

NEW = re.compile(r"< new_session run (\S+) (\S+)")


def _fragment_runs(lines: list[str]) -> list[tuple[list[str], str]]:
    """The protocol lines of each fragment run that has ended, from its new_session to its script_finished."""
    runs = [(i, m.group(1), m.group(2)) for i, line in enumerate(lines) if (m := NEW.search(line))]
    return [(lines[i:j + 1], fragment) for i, run, fragment in runs if fragment != "page"
            for j in range(i, len(lines)) if f"< script_finished run {run}" in lines[j]]


def test_every_run_of_the_live_view_sends_its_timer_again(server):
    students = LightStudents()
    try:
        student = students.open(server.url + "/?epochs=100")
        assert students.ready(student, 60)
        students.press(student)
        wait_until(lambda: len(_fragment_runs(list(student.protocol))) >= 2, timeout=60, every=0.2)
        finished = _fragment_runs(list(student.protocol))
        assert len(finished) >= 2, list(student.protocol)  # the timer's reruns of the live view, each ended
        for lines, fragment in finished:
            assert any(f"< auto_rerun {fragment} every" in line for line in lines), lines
        assert not students.errors(student)
    finally:
        students.close()
