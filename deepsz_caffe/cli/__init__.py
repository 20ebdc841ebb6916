"""deepsz: DeepSZ compression of Caffe models (Jin et al., HPDC 2019).

Thin wrappers over the Python API with Caffe-style flags, one module per group of commands, each
registering its own subcommands (`deepsz --help` lists them; docs/cli.md is generated from them).

Every DeepSZError (bad input, corrupt file, unknown layer...) becomes one line on stderr and
exit status 1; argparse usage errors exit 2. No traceback reaches the user for expected errors.
"""
import argparse
import json
import sys
import warnings

from .. import atomic
from ..errors import ConfigError, DeepSZError
from . import interrupt


def parse_assignments(text: str, usage: str) -> dict[str, str]:
    """`ip1=0.02,ip2=0.03` -> {"ip1": "0.02", "ip2": "0.03"}; ConfigError(usage) if malformed."""
    pairs = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not name:
            raise ConfigError(f"{usage}, got {item!r}")
        pairs[name] = value
    return pairs


def parse_bounds(text: str) -> dict[str, float]:
    """--eb: per-layer error bounds, each checked (finite, > 0)."""
    pairs = parse_assignments(text, "--eb expects LAYER=VALUE[,LAYER=VALUE...]")
    return {name: _number(value, f"--eb {name}") for name, value in pairs.items()}


def parse_kept(text: str) -> dict[str, float]:
    """--kept: per-layer kept fractions (their range is checked by prune.magnitude_masks)."""
    pairs = parse_assignments(text, "--kept expects LAYER=FRACTION[,LAYER=FRACTION...]")
    return {name: _number(value, f"--kept {name}") for name, value in pairs.items()}


def _number(text: str, what: str) -> float:
    """A float; its range is checked once, by the API the value goes to."""
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{what}: {text!r} is not a number") from None


def parse_bytes(text: str) -> int:
    """--max-memory: 4G, 2048M, 1.5GiB, 0 (K/M/G/T are powers of 1024)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in units else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 4G or 2048M, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a size >= 0, got {text!r}")
    return int(value * units[unit])


def parse_layers(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _flag(p, name, **kw):
    """Accept Caffe's single-dash spelling too (`-weights` as well as `--weights`)."""
    p.add_argument(f"--{name}", f"-{name}", **kw)


def _print_json(obj, path=None):
    if path:
        atomic.write_json(path, obj)
        print(f"wrote {path}")
    else:
        print(json.dumps(obj, indent=2))


def _codec_flags(p):
    p.add_argument("--preset", help="paper (default: SZ2 + best of gzip/zstd/blosc, as published) | "
                                    "best (also SZ3, quant, ctx; each layer gets its best coder) | "
                                    "max (best + zquant: kept weights within the bound of 0 coded "
                                    "as pruned)")
    p.add_argument("--lossy", help="lossy codec(s), comma-separated: sz2 | sz3 | zfp | quant | zquant")
    p.add_argument("--lossless", help="index codec: best | best-all | zstd | gzip | blosc | ctx")


def _codecs(a) -> dict:
    from ..presets import resolve

    preset = resolve(a.preset, a.lossy, a.lossless)
    return {"lossy": preset.lossy, "lossless": preset.lossless}


def build_parser() -> argparse.ArgumentParser:
    from . import caffe, data, files, method, paper, validate

    p = argparse.ArgumentParser(prog="deepsz", description=__doc__.splitlines()[0])
    _verbosity_flags(p, argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True)
    for group in (files, method, caffe, data, paper):
        group.register(sub)
    for command in sub.choices.values():  # before or after the command: `deepsz -q compress ...`
        _verbosity_flags(command, argparse.SUPPRESS)
        # every command's arguments checked first, in one pass
        command.set_defaults(func=validate.checked(command.get_default("func")))
    return p


def _verbosity_flags(p, default) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", default=default,
                   help="errors and warnings only: no stage lines, no progress bars")
    g.add_argument("-v", "--verbose", action="store_true", default=default,
                   help="also every assessed point and other detail (logging DEBUG)")


def _log_level(args) -> int:
    import logging

    if getattr(args, "quiet", False) and getattr(args, "verbose", False):
        raise ConfigError("--quiet and --verbose exclude each other")
    if getattr(args, "quiet", False):
        return logging.WARNING
    return logging.DEBUG if getattr(args, "verbose", False) else logging.INFO


def main(argv=None) -> int:
    """Run one command; exit status 0, 1 (refused, one line), 2 (usage), 130/143 (interrupted).
    As the program (argv None: sys.argv), signals are ignored once it is done, so that a late
    one cannot become a traceback on the way out; called with argv, the caller's handlers are
    restored."""
    try:
        previous = interrupt.install()  # first: a signal during the imports below ends in one line
        try:
            return _main(argv)
        finally:
            interrupt.ignore() if argv is None else interrupt.restore(previous)
    except interrupt.Interrupted as e:
        print("deepsz: interrupted", file=sys.stderr)
        return e.exit_status
    except BaseException:
        if interrupt.received:  # the signal's exception, turned into another by a C extension
            print("deepsz: interrupted", file=sys.stderr)
            return 128 + interrupt.received[0]
        raise


def _main(argv) -> int:
    from .. import log

    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        # Python's default: an import cut short by Ctrl-C leaves its source file to the GC, whose
        # "unclosed file" is no warning for the user.
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.showwarning = lambda msg, *_a, **_k: print(f"deepsz: warning: {msg}", file=sys.stderr)
        try:
            log.configure(_log_level(args))
            args.func(args)
        except DeepSZError as e:
            interrupt.check()  # a library may have turned the signal's exception into its own
            print(f"deepsz: error: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            raise interrupt.Interrupted(interrupt.received[0] if interrupt.received else 2) from None
        except BrokenPipeError:  # output piped into `head`: not an error of ours
            sys.stderr.close()
            return 141
        except (MemoryError, RecursionError, OSError) as e:  # the last line of defence: the
            interrupt.check()
            print(f"deepsz: error: {_unexpected(e)}", file=sys.stderr)  # causes are checked
            return 1  # first, and a traceback would help nobody who fed us a bad file
        except Exception as e:  # noqa: BLE001 - a library's own parse error, by class name
            interrupt.check()
            if type(e).__name__ not in _LIBRARY_ERRORS:
                raise
            print(f"deepsz: error: {_unexpected(e)}", file=sys.stderr)
            return 1
    return 0


# Parse errors of the libraries under us that no check of ours is known to let through:
# protobuf's DecodeError (google.protobuf.message), zstandard's ZstdError.
_LIBRARY_ERRORS = {"DecodeError", "ZstdError"}


def _unexpected(e: BaseException) -> str:
    """One line for an exception no check of ours turned into a DeepSZError."""
    if isinstance(e, MemoryError):
        return "out of memory (the input is larger than this machine can decode, or malformed)"
    if isinstance(e, RecursionError):
        return "input nested too deeply (malformed)"
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename + ': ' if e.filename else ''}{e.strerror}"
    text = " ".join(str(e).split()) or type(e).__name__
    return f"{type(e).__name__}: {text[:200]}"


if __name__ == "__main__":
    sys.exit(main())
