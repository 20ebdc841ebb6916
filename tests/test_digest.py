"""The one file sha256 and the one input fingerprint of result caches."""
import hashlib
import io
import json
from pathlib import Path

from deepsz_caffe import digest


def test_sha256_of_files_and_streams(tmp_path):
    data = bytes(range(256)) * 9000  # over one read chunk
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert digest.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert digest.sha256_stream(io.BytesIO(data), 1000) == hashlib.sha256(data[:1000]).hexdigest()


def test_fingerprint_keys_files_by_content_and_settings_by_json(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("same")
    b.write_text("same")
    key = digest.fingerprint(a, {"x": 1, "y": [2]})
    assert len(key) == 20 and key == digest.fingerprint(b, {"y": [2], "x": 1})
    assert key != digest.fingerprint(str(a), {"x": 1, "y": [2]})  # a str is a setting, not a file
    a.write_text("other")
    assert key != digest.fingerprint(a, {"x": 1, "y": [2]})
    # The layout every recorded key (results/*/train.json "inputs", assess caches) was made with.
    h = hashlib.sha256(hashlib.sha256(b"same").hexdigest().encode())
    h.update(json.dumps({"x": 1, "y": [2]}, sort_keys=True).encode())
    assert key == h.hexdigest()[:20]
    assert digest.fingerprint(Path(b)) == hashlib.sha256(
        hashlib.sha256(b"same").hexdigest().encode()).hexdigest()[:20]
