"""deepsz_caffe.atomic: outputs that are not regular files are refused, before and at the rename."""
import os

import pytest
from hostile_driver import make_special

from deepsz_caffe import atomic
from deepsz_caffe.errors import DeepSZError


@pytest.mark.parametrize("kind", ["fifo", "socket", "link-to-dev-null"])
def test_special_outputs_are_refused(tmp_path, kind):
    path = make_special(tmp_path / "out", kind)
    before = os.lstat(path)
    with pytest.raises(DeepSZError, match="not a regular file"):
        atomic.check_output(path)
    with pytest.raises(DeepSZError, match="not a regular file"):
        atomic.write_bytes(path, b"data")
    after = os.lstat(path)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp file left


def test_a_special_file_appearing_after_the_check_is_not_replaced(tmp_path):
    path = tmp_path / "out"
    atomic.check_output(path)
    with pytest.raises(DeepSZError, match="not a regular file"):
        with atomic.replacing(path) as tmp:
            tmp.write_bytes(b"data")
            os.mkfifo(path)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_regular_files_and_links_to_them_are_replaced(tmp_path):
    (tmp_path / "target").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    atomic.write_bytes(atomic.check_output(tmp_path / "target"), b"new")
    assert (tmp_path / "target").read_bytes() == b"new"
    atomic.check_output(tmp_path / "link")
