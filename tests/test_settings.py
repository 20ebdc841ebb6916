"""The argument rules of deepsz/settings.py (shared by the API's Settings and the CLI's one
validation pass): counts, finite numbers, layer names, GPU ids, scheduler addresses."""

import pytest

from deepsz_caffe.deepsz.settings import Settings, gpu_ids, integer, layer_names, number, scheduler_address
from deepsz_caffe.errors import ConfigError


def test_integer_bounds_and_types():
    assert integer("--iterations", 1) == 1 and integer("--iterations", 2**31 - 1) == 2**31 - 1
    for bad in (0, -1, 2**31, 10**20, 1.0, True, "3", None):
        with pytest.raises(ConfigError, match="--iterations"):
            integer("--iterations", bad)
    assert integer("--gpu", 0, 0) == 0


def test_number_is_finite_and_in_range():
    assert number("--max-loss", 0) == 0.0 and number("--max-loss", "0.2") == 0.2
    for bad in (float("nan"), float("inf"), -float("inf"), float("1e400"), -1, "abc", None):
        with pytest.raises(ConfigError, match="--max-loss"):
            number("--max-loss", bad)
    with pytest.raises(ConfigError, match="> 0"):
        number("--lr-scale", 0.0, above=True)
    assert number("--lr-scale", 1e-9, above=True) == 1e-9


def test_layer_names_and_gpu_ids_name_something():
    assert layer_names(["ip1", "ip2"]) == ("ip1", "ip2")
    for bad in ([], [""], [" "], [3]):
        with pytest.raises(ConfigError, match="names no layer"):
            layer_names(bad)
    assert gpu_ids([0, 1]) == (0, 1)
    with pytest.raises(ConfigError, match="names no GPU"):
        gpu_ids([])
    with pytest.raises(ConfigError, match="between 0"):
        gpu_ids([0, -1])


@pytest.mark.parametrize(
    "address",
    [
        "tcp://host:8786",
        "host:8786",
        "tcp://10.0.0.1:1",
        "tls://a.b-c:65535",
        "[::1]:8786",
        "tcp://[fe80::1]:8786",
    ],
)
def test_scheduler_addresses_accepted(address):
    assert scheduler_address(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "not a url",
        "tcp://host",
        "host",
        "host:0",
        "host:65536",
        "host:99999",
        "",
        "ftp://host:21",
        "tcp://:8786",
        "tcp://host:8786/path",
        None,
    ],
)
def test_scheduler_addresses_refused(address):
    with pytest.raises(ConfigError, match="--scheduler expects host:port"):
        scheduler_address(address)


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("iterations", 0, "--iterations"),
        ("iterations", -1, "--iterations"),
        ("gpu", -1, "--gpu"),
        ("gpus", (), "names no GPU"),
        ("gpus", (0, -2), "--gpus"),
        ("workers", 0, "--workers"),
        ("workers", 10**6, "--workers"),
        ("layers", (), "names no layer"),
        ("layers", ("ip1", ""), "names no layer"),
        ("scheduler", "not a url", "--scheduler"),
    ],
)
def test_settings_refuse_what_the_cli_refuses(field, value, match):
    with pytest.raises(ConfigError, match=match):
        Settings(**{field: value})


def test_settings_keep_valid_values():
    s = Settings(layers=["ip1"], iterations=5, gpu=0, gpus=[0, 1], workers=4, scheduler="tcp://h:1")
    assert (s.layers, s.iterations, s.gpus, s.workers) == (("ip1",), 5, (0, 1), 4)
