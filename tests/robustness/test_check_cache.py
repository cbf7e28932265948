"""The proof cache of ``parse`` (edgeq/_checked.py): a model that passed is not checked again, and nothing else is.

A corrupt model must fail however the cache is primed: the cases prove a valid model, then parse a corrupt one that
differs from it only in the bytes of one quantization parameter (same length, same layout), from memory, from the
on-disk proofs of another process, and from the same file changed in place with its size and mtime kept (the
file's stamp must change, or the stamp must not count).
"""

from __future__ import annotations

import marshal
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from edgeq import _checked, _flatbuffer
from edgeq._flatbuffer import _Lazy, parse
from edgeq._io import read_model_bytes
from edgeq.errors import ModelError

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(tmp_path / "cache"))
    _checked.forget()
    yield tmp_path / "cache"
    _checked.forget()


@pytest.fixture
def counted(monkeypatch):  # type: ignore[no-untyped-def]
    """How often the full checks ran and how often a model's content was hashed (the real functions, counted)."""
    calls = {"checks": 0, "hashes": 0}
    validate, key = _flatbuffer.validate, _checked.content_key

    def counting_validate(*args):  # type: ignore[no-untyped-def]
        calls["checks"] += 1
        return validate(*args)

    def counting_key(*args):  # type: ignore[no-untyped-def]
        calls["hashes"] += 1
        return key(*args)

    monkeypatch.setattr(_flatbuffer, "validate", counting_validate)
    monkeypatch.setattr(_checked, "content_key", counting_key)
    return calls


@pytest.fixture
def stamps(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Stamps for files just written (the racy-clean wait is tested on its own)."""
    if _checked._boot_id() is None or _checked._file_system(os.stat(tmp_path).st_dev) not in \
            _checked.STAMPED_FILE_SYSTEMS:
        pytest.skip("no file stamps here (not Linux, or a network/overlay file system): the content decides")
    monkeypatch.setattr(_checked, "RACY_NS", 0)


def zero_point(value: int):  # type: ignore[no-untyped-def]
    """Set tensor 12's zero point."""
    def change(m):  # type: ignore[no-untyped-def]
        m.subgraphs[0].tensors[12].quantization.zeroPoint = [value]
    return change


@pytest.fixture
def twins(edit) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    """A valid model and a corrupt one (zero point 200 for INT8) that differ only in that value's bytes."""
    valid, corrupt = edit(SAMPLE, zero_point(3)), edit(SAMPLE, zero_point(200))
    assert len(valid) == len(corrupt) and sum(a != b for a, b in zip(valid, corrupt)) == 1
    return valid, corrupt


def load(path: Path):  # type: ignore[no-untyped-def]
    """What ``Model(path)`` does before the interpreter: read the file, then parse (and check) its bytes."""
    return parse(*read_model_bytes(path))


def overwrite_in_place(path: Path, data: bytes) -> None:
    """Write ``data`` into the same inode, then set atime and mtime back to what they were."""
    before = os.stat(path)
    assert len(data) == before.st_size
    with open(path, "r+b") as fh:
        fh.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("name", ["edgeq_int8", "tfl_multi_io", "tfl_two_signatures", "tfl_custom_op", "while_model"])
@pytest.mark.tf
def test_a_proven_model_reads_the_same(request, name):
    data = request.getfixturevalue(name).read_bytes()
    full = parse(data)
    assert isinstance(full.subgraphs[0].tensors, tuple)  # checked in full the first time
    assert parse(bytes(data)) == full  # a fresh copy: found by content, not identity
    _checked.forget()
    again = parse(bytes(data))  # proven by an earlier "process": read lazily
    assert isinstance(again.subgraphs[0].tensors, _Lazy)
    assert again == full
    for a, b in zip(again.subgraphs, full.subgraphs):
        assert tuple(a.tensors) == b.tensors and tuple(a.operators) == b.operators
        assert [o.options for o in a.operators] == [o.options for o in b.operators]  # not part of ==
    assert tuple(again.buffer_sizes) == full.buffer_sizes
    assert again.op_counts() == full.op_counts() and again.subgraphs[0].tensors[-1] == full.subgraphs[0].tensors[-1]


def test_a_kept_model_is_read_only(twins):
    first = parse(twins[0])
    assert parse(bytes(twins[0])) is first  # the same bytes again: the kept result, shared
    with pytest.raises(TypeError):
        first.metadata["edgeq"] = b"changed by a caller"


def test_a_changed_byte_is_checked_again(twins, counted):
    valid, corrupt = twins
    parse(valid)
    with pytest.raises(ModelError, match="zero point of 200"):
        parse(corrupt)  # proven in memory: compared byte for byte
    _checked.forget()
    parse(valid)
    assert counted["checks"] == 2  # the valid one again: proven by the marker of its content's hash
    _checked._recent.clear()
    with pytest.raises(ModelError, match="zero point of 200"):
        parse(corrupt)  # proven by hash
    with pytest.raises(ModelError, match="zero point of 200"):
        parse(corrupt)  # and a failure is never remembered


def test_proofs_outlive_the_process(twins, cache, counted):
    valid, corrupt = twins
    path = cache.parent / "valid.tflite"
    path.write_bytes(valid)
    code = "import sys; from edgeq._flatbuffer import parse; parse(open(sys.argv[1], 'rb').read())"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    markers = list(cache.glob("checked/*/*"))
    assert [m.name for m in markers] == [_checked.content_key(memoryview(valid))]
    assert _checked.proof(markers[0].name) == markers[0].read_bytes()[4:]  # the summary behind its CRC-32
    assert isinstance(parse(valid).subgraphs[0].tensors, _Lazy)  # this process trusts the other's proof
    assert counted["checks"] == 0
    with pytest.raises(ModelError, match="zero point of 200"):
        parse(corrupt)


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "another model's summary", "another layout", "empty"])
def test_a_damaged_proof_counts_as_none(twins, cache, counted, damage):
    valid, corrupt = twins
    full = parse(valid)
    (marker,) = cache.glob("checked/*/*")
    raw = marker.read_bytes()
    if damage == "flip a byte":
        raw = raw[:-3] + bytes([raw[-3] ^ 0x20]) + raw[-2:]
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    elif damage == "another model's summary":  # a sound proof of another file, filed under this one's key
        other = SAMPLE.read_bytes()
        assert len(other) != len(valid)
        parse(other)
        raw = (marker.parent / _checked.content_key(memoryview(other))).read_bytes()
    elif damage == "another layout":  # sound CRC, but not a summary this code writes
        foreign = marshal.dumps({"format": 99, "spans": [1, 2]})
        raw = zlib.crc32(foreign).to_bytes(4, "little") + foreign
    else:
        raw = b""
    marker.write_bytes(raw)
    _checked.forget()
    again = parse(valid)  # checked in full again, and the proof written anew
    assert counted["checks"] == 2 + (damage == "another model's summary")
    assert isinstance(again.subgraphs[0].tensors, tuple) and again == full
    assert marker.read_bytes() != raw and _checked.proof(marker.name) == marker.read_bytes()[4:]
    _checked.forget()
    with pytest.raises(ModelError, match="zero point of 200"):
        parse(corrupt)


def test_an_empty_cache_dir_keeps_proofs_in_memory(twins, cache, monkeypatch, counted):
    monkeypatch.setenv("EDGEQ_CACHE_DIR", "")
    parse(twins[0])
    assert not cache.exists()
    parse(twins[0])
    assert counted["checks"] == 1
    _checked.forget()
    assert isinstance(parse(twins[0]).subgraphs[0].tensors, tuple)


def test_an_unwritable_cache_dir_is_skipped(twins, cache, monkeypatch, counted):
    cache.parent.joinpath("file").write_text("not a folder")
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(cache.parent / "file"))
    parse(twins[0])  # no error: the proof stays in memory
    _checked._recent.clear()
    assert isinstance(parse(twins[0]).subgraphs[0].tensors, _Lazy)
    assert counted["checks"] == 1


# ------------------------------------------------------------------------------------------------ file stamps
def test_an_unchanged_file_is_proven_by_its_stamp(twins, tmp_path, cache, counted, stamps):
    path = tmp_path / "model.tflite"
    path.write_bytes(twins[0])
    load(path)
    assert counted == {"checks": 1, "hashes": 0}  # a file with a stamp is never hashed
    assert [m.name[0] for m in cache.glob("checked/*/*")] == ["s"]
    load(path)  # in this process: the kept model
    _checked.forget()
    again = load(path)  # in a new process: the stamp's marker
    assert counted == {"checks": 1, "hashes": 0} and isinstance(again.subgraphs[0].tensors, _Lazy)


@pytest.mark.parametrize("new_process", [False, True])
def test_a_file_changed_in_place_with_its_size_and_mtime_kept_is_checked_again(twins, tmp_path, counted, stamps,
                                                                                new_process):
    valid, corrupt = twins
    path = tmp_path / "model.tflite"
    path.write_bytes(valid)
    load(path)
    overwrite_in_place(path, corrupt)  # the ctime moves on: os.utime cannot set it
    if new_process:
        _checked.forget()
    with pytest.raises(ModelError, match="zero point of 200"):
        load(path)
    assert counted["checks"] == 2
    overwrite_in_place(path, valid)  # back to the proven bytes: the kept model (same bytes), else checked again
    load(path)
    assert counted["checks"] == 2 + new_process


def test_a_copy_is_checked_again_and_a_hard_link_is_proven_by_its_stamp(twins, tmp_path, counted, stamps):
    path, copy, link = tmp_path / "model.tflite", tmp_path / "copy.tflite", tmp_path / "link.tflite"
    path.write_bytes(twins[0])
    os.link(path, link)  # before the proof: a new link changes the inode's ctime, so its stamp
    load(path)
    shutil.copyfile(path, copy)
    _checked.forget()
    load(copy)  # another inode, another stamp: checked again (hashing would cost about as much)
    assert counted == {"checks": 2, "hashes": 0}
    _checked.forget()
    load(link)  # the same inode, unchanged: its stamp
    load(copy)  # and the copy's own stamp
    assert counted == {"checks": 2, "hashes": 0}


def test_a_file_without_a_stamp_is_hashed(twins, tmp_path, counted, stamps, monkeypatch):
    path = tmp_path / "model.tflite"
    path.write_bytes(twins[0])
    monkeypatch.setattr(_checked, "STAMPED_FILE_SYSTEMS", frozenset())  # as on NFS, FAT, an overlay
    load(path)
    _checked.forget()
    load(path)
    assert counted == {"checks": 1, "hashes": 2}


def test_a_recently_changed_file_has_no_stamp(twins, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(twins[0])
    old = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(old, old))  # an old mtime does not help: the ctime is now
    data, _ = read_model_bytes(path)
    assert _checked.stamp_of(data) is None


def test_a_file_changed_while_read_has_no_stamp(twins, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(twins[0])
    started = time.time_ns() + _checked.RACY_NS  # as if read long after the write
    before = os.stat(path)
    assert _checked._stamp(before, os.stat(path), len(twins[0]), started) is not None or \
        _checked._file_system(before.st_dev) not in _checked.STAMPED_FILE_SYSTEMS
    overwrite_in_place(path, twins[1])
    assert _checked._stamp(before, os.stat(path), len(twins[0]), started) is None
    assert _checked._stamp(before, before, len(twins[0]) + 1, started) is None  # grew while read


def test_proofs_of_another_checking_code_do_not_count(twins, tmp_path, cache, counted, stamps, monkeypatch):
    path = tmp_path / "model.tflite"
    path.write_bytes(twins[0])
    load(path)
    monkeypatch.setattr(_checked, "_code_id", lambda: "a-newer-check")  # edgeq upgraded: its checks may differ
    _checked.forget()
    load(path)
    assert counted["checks"] == 2
    assert len(list(cache.glob("checked/*"))) == 2


def test_the_cli_refuses_a_proven_file_changed_in_place(edit, tmp_path, cache):
    """End to end, with the real 2 s racy-clean wait: a stamped proof, then the same inode, size and mtime."""
    if _checked._boot_id() is None or _checked._file_system(os.stat(tmp_path).st_dev) not in \
            _checked.STAMPED_FILE_SYSTEMS:
        pytest.skip("no file stamps here (not Linux, or a network/overlay file system): the content decides")
    valid, corrupt = (edit(SAMPLE, zero_point(z)) for z in (3, 200))
    path = tmp_path / "model.tflite"
    path.write_bytes(valid)
    env = {**os.environ, "EDGEQ_CACHE_DIR": str(cache), "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}

    def inspect() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgeq", "inspect", str(path), "--json"], env=env,
                              capture_output=True, text=True, timeout=120)

    time.sleep(_checked.RACY_NS / 1e9 + 0.1)
    assert inspect().returncode == 0
    assert any(m.name.startswith("s") for m in cache.glob("checked/*/*"))  # the file's stamp is on record
    overwrite_in_place(path, corrupt)
    time.sleep(_checked.RACY_NS / 1e9 + 0.1)  # the change is old enough for the new stamp to count
    refused = inspect()
    assert refused.returncode == 2, refused.stderr
    assert "zero point of 200" in refused.stderr and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_proofs_of_checking_code_unused_for_a_month_are_pruned(twins, cache):
    old, recent = cache / "checked" / "old-code", cache / "checked" / "recent-code"
    for folder, age_days in ((old, _checked.PRUNE_DAYS + 1), (recent, _checked.PRUNE_DAYS - 1)):
        folder.mkdir(parents=True)
        (folder / "proof").write_bytes(b"")
        then = time.time() - age_days * 86400
        os.utime(folder, (then, then))
    parse(twins[0])  # the first proof of this checking code starts its folder, and prunes
    assert sorted(p.name for p in (cache / "checked").iterdir()) == sorted([recent.name, _checked._code_id()])
