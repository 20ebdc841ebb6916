"""deepsz_caffe.cli: argument parsing and the one-line error contract."""
import pytest

from deepsz_caffe.cli import main, parse_bounds, parse_kept
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
