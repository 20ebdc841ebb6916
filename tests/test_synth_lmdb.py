"""Synthetic ImageNet-shaped LMDB (issue 14 item 1): record format, determinism, chunking,
natural-image statistics, safe writes, and Caffe's own Data layer reading it."""
import os

import lmdb
import numpy as np
import pytest

from deepsz_caffe.caffe import synth_lmdb
from deepsz_caffe.caffe.synth_lmdb import BGR_MEAN, synthetic_image, write_synthetic_imagenet
from deepsz_caffe.errors import ConfigError


def records(path) -> list[tuple[bytes, bytes]]:
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        return list(txn.cursor())


def datum(value: bytes):
    from caffe.proto import caffe_pb2

    d = caffe_pb2.Datum()
    d.ParseFromString(value)
    return d


def write(path, n, **kw):
    kw = {"size": 32, "classes": 10, "progress": False, **kw}
    return write_synthetic_imagenet(path, n, **kw)


def test_records_are_raw_caffe_datums_in_index_order(tmp_path):
    recs = records(write(tmp_path / "db", 5, size=64, seed=3))
    assert [k for k, _ in recs] == [b"%08d" % i for i in range(5)]
    for i, (_, value) in enumerate(recs):
        d = datum(value)
        assert (d.channels, d.height, d.width, d.encoded) == (3, 64, 64, False)
        assert len(d.data) == 3 * 64 * 64 and not d.float_data
        image, label = synthetic_image(3, i, 64, 10)
        assert d.data == image.tobytes() and d.label == label and 0 <= label < 10


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b = records(write(tmp_path / "a", 6, seed=1)), records(write(tmp_path / "b", 6, seed=1))
    c = records(write(tmp_path / "c", 6, seed=2))
    assert a == b
    assert all(x[1] != y[1] for x, y in zip(a, c))


def test_chunk_size_and_count_do_not_change_the_bytes(tmp_path):
    by3 = records(write(tmp_path / "by3", 10, chunk=3))
    by7 = records(write(tmp_path / "by7", 10, chunk=7))
    assert by3 == by7 and len(by3) == 10
    assert records(write(tmp_path / "first4", 4, chunk=2)) == by3[:4]  # a prefix of a larger set


def test_images_have_natural_statistics_not_white_noise():
    x = np.stack([synthetic_image(0, i, 64)[0] for i in range(60)]).astype(np.float64)
    assert np.all(np.abs(x.mean(axis=(0, 2, 3)) - BGR_MEAN) < 12)
    assert np.all((x.std(axis=(0, 2, 3)) > 40) & (x.std(axis=(0, 2, 3)) < 70))

    def neighbour_corr(a):
        return np.corrcoef(a[..., :-1].ravel(), a[..., 1:].ravel())[0, 1]

    assert neighbour_corr(x) > 0.8 and neighbour_corr(np.swapaxes(x, 2, 3)) > 0.8
    shuffled = np.random.default_rng(0).permutation(x.ravel()).reshape(x.shape)
    assert abs(neighbour_corr(shuffled)) < 0.05  # the same histogram as white noise is not smooth
    # Colour is correlated across channels, as in photographs, but not identical.
    channels = np.corrcoef(x.transpose(1, 0, 2, 3).reshape(3, -1))
    assert np.all(channels[np.triu_indices(3, 1)] > 0.7) and np.all(channels[np.triu_indices(3, 1)] < 0.995)
    # Images differ from one another (per-image brightness, contrast, spectrum).
    assert np.std(x.mean(axis=(1, 2, 3))) > 5


def test_labels_are_uniform_over_the_classes():
    labels = [synthetic_image(5, i, 8, 10)[1] for i in range(3000)]
    counts = np.bincount(labels, minlength=10)
    assert len(counts) == 10 and counts.min() > 230 and counts.max() < 370


def test_refuses_existing_paths_and_replaces_only_lmdbs(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    (tmp_path / "file").write_text("keep me")
    for target in ("busy", "file"):
        with pytest.raises(ConfigError, match="already exists"):
            write(tmp_path / target, 2)
        with pytest.raises(ConfigError, match="not an LMDB"):
            write(tmp_path / target, 2, overwrite=True)
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "file").read_text() == "keep me"

    (tmp_path / "empty").mkdir()
    assert len(records(write(tmp_path / "empty", 2))) == 2       # an empty directory is fine
    with pytest.raises(ConfigError, match="already exists"):
        write(tmp_path / "empty", 3)
    assert len(records(write(tmp_path / "empty", 3, overwrite=True))) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "empty", "file"]  # no temp dirs


def test_interrupted_write_leaves_nothing(tmp_path, monkeypatch):
    real = synth_lmdb.synthetic_image

    def failing(seed, index, *a):
        if index == 5:
            raise KeyboardInterrupt
        return real(seed, index, *a)

    monkeypatch.setattr(synth_lmdb, "synthetic_image", failing)
    with pytest.raises(KeyboardInterrupt):
        write(tmp_path / "db", 8, chunk=2)
    assert list(tmp_path.iterdir()) == []


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = write(tmp_path / "db", 2)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o750
    assert (path / "data.mdb").stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize("kw, message", [({"n_images": 0}, "number of images"), ({"size": 4}, "image size"),
                                         ({"classes": 0}, "classes"), ({"seed": -1}, "seed"),
                                         ({"chunk": 0}, "chunk"), ({"n_images": 2.5}, "integer")])
def test_bad_arguments_are_one_line_config_errors(tmp_path, kw, message):
    args = {"path": tmp_path / "db", "n_images": 2, "progress": False, **kw}
    with pytest.raises(ConfigError, match=message) as e:
        write_synthetic_imagenet(**args)
    assert "\n" not in str(e.value) and not (tmp_path / "db").exists()


def test_sizes_no_machine_holds_are_refused_up_front(tmp_path, monkeypatch):
    """Labels and dimensions are int32 in a Datum; one image's working memory and the whole
    database are estimated before anything is written."""
    path = tmp_path / "db"
    for kw, message in (({"classes": 10**12}, "classes"), ({"n_images": 10**12}, "number of images"),
                        ({"size": 30000}, "2 GiB message limit")):
        with pytest.raises(ConfigError, match=message):
            synth_lmdb.check_request(path, **{"n_images": 1, "size": 8, "classes": 10, **kw})
    monkeypatch.setattr(synth_lmdb, "_available_memory", lambda: 1 << 30)
    with pytest.raises(ConfigError, match=r"needs ~1.9 GiB of memory, 1.0 GiB available"):
        synth_lmdb.check_request(path, 1, 4000, 10)
    assert synth_lmdb.check_request(path, 1, 2000, 10) == (1, 2000, 10, 0)
    free = 10 << 20
    monkeypatch.setattr(synth_lmdb.shutil, "disk_usage", lambda p: type("U", (), {"free": free})())
    with pytest.raises(ConfigError, match=r"100 images of 3x256x256 need ~0.0 GiB, 0.0 GiB free"):
        synth_lmdb.check_request(path, 100, 256, 10)
    assert not path.exists()


def test_estimates_cover_what_one_image_really_takes():
    """The peak of numpy's allocations for one image (traced: RSS depends on what ran before) is
    within BYTES_PER_PIXEL, and the estimate is not wildly above it."""
    import tracemalloc

    synthetic_image(0, 0, 64)  # the cached frequency grids of small sizes are not the image's
    tracemalloc.start()
    try:
        synthetic_image(0, 0, 1536)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.5 * synth_lmdb.BYTES_PER_PIXEL * 1536**2 < peak <= synth_lmdb.BYTES_PER_PIXEL * 1536**2


NET = """name: "read"
layer {{ name: "data" type: "Data" top: "data" top: "label"
  transform_param {{ crop_size: 227 mean_value: 104 mean_value: 117 mean_value: 123 }}
  data_param {{ source: "{source}" batch_size: 4 backend: LMDB }} }}
"""


def test_caffe_data_layer_reads_it_like_imagenet(tmp_path):
    import caffe

    db = write_synthetic_imagenet(tmp_path / "db", 4, size=256, classes=1000, seed=7, progress=False)
    proto = tmp_path / "read.prototxt"
    proto.write_text(NET.format(source=db))
    net = caffe.Net(str(proto), caffe.TEST)
    net.forward()
    assert net.blobs["data"].data.shape == (4, 3, 227, 227)
    for i in range(4):
        image, label = synthetic_image(7, i, 256, 1000)
        assert net.blobs["label"].data[i] == label
        # TEST phase: centre crop (offset (256 - 227) // 2), minus the per-channel mean.
        expected = image[:, 14:241, 14:241].astype(np.float32) - BGR_MEAN[:, None, None]
        np.testing.assert_array_equal(net.blobs["data"].data[i], expected)
