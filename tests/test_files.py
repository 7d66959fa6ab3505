"""free3d.files: whole files or none, readable like any file the user writes."""

import os
import stat

import pytest

from free3d.files import write_text_atomic


def test_written_files_get_the_usual_mode_and_no_temporary_is_left(tmp_path):
    umask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "a.bvh", "HIERARCHY\n")
    finally:
        os.umask(umask)
    assert path.read_text() == "HIERARCHY\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # not mkstemp's private 0600
    assert [p.name for p in tmp_path.iterdir()] == ["a.bvh"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_text_atomic(path, None)  # not text: fails while writing
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.json"]
