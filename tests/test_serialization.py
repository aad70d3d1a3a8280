"""Atomic writes: a failed write leaves the old version, a finished one replaces it whole."""

from __future__ import annotations

import json
import os
import stat

import pytest

from spacy_nerzoo.serialization import (
    atomic_path,
    recover_folder,
    replace_folder,
    staging_folder,
    write_json_atomic,
    write_text_atomic,
)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"f1": 1.0})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"f1": 1.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_finished_write_replaces_the_file_with_plain_permissions(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_the_suffix_is_kept_for_writers_that_add_one(tmp_path):
    np = pytest.importorskip("numpy")
    target = tmp_path / "soft.npy"
    with atomic_path(target, suffix=".tmp.npy") as tmp:
        np.save(tmp, np.arange(3))
    assert np.load(target).tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["soft.npy"]


def test_replace_folder_swaps_whole_folders(tmp_path):
    folder = tmp_path / "last"
    for version in ("one", "two"):
        tmp = staging_folder(folder)
        (tmp / "weights").write_text(version)
        replace_folder(tmp, folder)
        assert (folder / "weights").read_text() == version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]


def test_recover_folder_after_a_kill_between_the_renames(tmp_path):
    folder, old = tmp_path / "best", tmp_path / "best.old"
    old.mkdir()
    (old / "weights").write_text("previous")
    recover_folder(folder)
    assert (folder / "weights").read_text() == "previous"
    assert not old.exists()
