"""deepsz_caffe.cli: argument parsing and the one-line error contract."""
import pytest

from deepsz_caffe.cli import main, parse_bounds, parse_bytes, parse_kept
from deepsz_caffe.errors import ConfigError


def test_parse_kept_and_bounds():
    assert parse_kept("ip1=0.08, ip2=0.09") == {"ip1": 0.08, "ip2": 0.09}
    assert parse_bounds("ip1=0.02,ip2=3e-2") == {"ip1": 0.02, "ip2": 0.03}
    with pytest.raises(ConfigError, match="LAYER=FRACTION"):
        parse_kept("ip1:0.08")
    with pytest.raises(ConfigError, match="not a number"):
        parse_kept("ip1=eight")
    with pytest.raises(ConfigError, match="LAYER=VALUE"):
        parse_bounds("=0.1")


@pytest.mark.parametrize("eb", ["0", "-1", "nan", "inf"])
def test_a_bound_that_is_not_positive_and_finite_is_one_line_and_exit_1(tmp_path, capsys, eb):
    model = tmp_path / "m.caffemodel"
    model.write_bytes(b"")  # never read: the bound is refused first
    assert main(["encode", "--weights", str(model), "--eb-all", eb, "-o", str(tmp_path / "o.dsz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("deepsz: error: --eb-all must be finite and > 0"), err
    assert not (tmp_path / "o.dsz").exists()


def test_inspect_table_fits_long_layer_names():
    from deepsz_caffe.cli.files import format_inspect

    row = {"shape": [512, 4608], "nnz": 12345, "density": 0.0052, "error_bound": 0.01,
           "csr_bytes": 61725, "data_bytes": 9000, "lossy_codec": "sz2", "index_bytes": 8000,
           "index_codec": "zstd", "ratio": 55.1}
    report = {"network": "resnet", "sha256": "ab" * 32, "codec_versions": {"sz2": "SZ 2.1.12.4"},
              "layers": [{**row, "name": "res5c_branch2b_a_very_long_name"}, {**row, "name": "fc"}],
              "selected_weight_bytes": 10, "selected_compressed_bytes": 2, "ratio": 5.0,
              "selected_bias_bytes": 0, "selected_bias_stored_bytes": 0, "ratio_with_biases": 5.0,
              "other_blob_bytes": 0, "file_bytes": 100}
    lines = format_inspect(report).splitlines()
    table = [ln for ln in lines if ln.startswith(("layer ", "res5c", "fc "))]
    assert len(table) == 3
    assert len({ln.index("512x4608") for ln in table[1:]}) == 1  # columns line up
    assert {ln.rindex("55.1x") for ln in table[1:]} == {len(table[0]) - 5}
    assert "selected layers:" in format_inspect(report) and "fc weights" not in format_inspect(report)
    assert f"sha256: {'ab' * 32}" in lines[1]


@pytest.mark.parametrize("error, message", [
    (MemoryError(), "deepsz: error: out of memory"),
    (RecursionError("maximum recursion depth exceeded"), "deepsz: error: input nested too deeply"),
    (OSError(28, "No space left on device", "out.dsz"), "deepsz: error: out.dsz: No space left on device"),
    (type("DecodeError", (Exception,), {})("Error parsing message"),
     "deepsz: error: DecodeError: Error parsing message"),
])
def test_every_error_class_reaching_main_is_one_line(monkeypatch, capsys, error, message):
    """The last line of defence: causes are checked first, but no traceback may reach the user."""
    from deepsz_caffe.cli import files

    def boom(_args):
        raise error

    monkeypatch.setattr(files, "cmd_inspect", boom)
    assert main(["inspect", "x.dsz"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith(message), err


def test_a_bug_still_shows_its_traceback(monkeypatch):
    from deepsz_caffe.cli import files

    monkeypatch.setattr(files, "cmd_inspect", lambda _a: [][1])
    with pytest.raises(IndexError):
        main(["inspect", "x.dsz"])


def test_parse_bytes_and_a_bad_max_memory(capsys):
    assert [parse_bytes(t) for t in ("4G", "2048M", "1.5GiB", "0", "512k")] == [
        4 << 30, 2 << 30, 3 << 29, 0, 512 << 10]
    with pytest.raises(SystemExit) as e:
        main(["test", "--model", "m.prototxt", "--weights", "w.caffemodel", "--max-memory", "lots"])
    assert e.value.code == 2 and "expected a size like 4G" in capsys.readouterr().err


def test_warnings_are_one_line_each_but_resource_warnings_stay_silent(monkeypatch, capsys):
    """A library warning reaches the user as `deepsz: warning: ...`; a ResourceWarning (an import
    cut short by Ctrl-C leaves a file to the GC) is Python's default: not shown."""
    import warnings
    from types import SimpleNamespace

    from deepsz_caffe import cli

    def command(_args):
        warnings.warn("a library's own warning", stacklevel=2)
        warnings.warn("unclosed file <x>", ResourceWarning, stacklevel=2)

    args = cli.build_parser().parse_args(["inspect", "x.dsz"])
    args.func = command
    monkeypatch.setattr(cli, "build_parser", lambda: SimpleNamespace(parse_args=lambda _argv: args))
    assert main(["inspect", "x.dsz"]) == 0
    assert capsys.readouterr().err.splitlines() == ["deepsz: warning: a library's own warning"]
