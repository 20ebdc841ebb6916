"""Exceptions raised by deepsz_caffe. The CLI prints each as one line and exits non-zero."""


class DeepSZError(Exception):
    """Base class: a problem the user can act on (bad input, bad file, bad configuration)."""


class CodecError(DeepSZError):
    """A compressor failed, is missing, or was given input it cannot take."""


class BoundViolation(CodecError):
    """A lossy round trip broke the requested pointwise error bound."""


class ContainerError(DeepSZError):
    """A .dsz file is truncated, corrupted, of another version, or otherwise unreadable."""


class CaffeIOError(DeepSZError):
    """A caffemodel/prototxt/LMDB is missing, malformed, or does not match the net."""


class ConfigError(DeepSZError):
    """Arguments that cannot be honoured (unknown layer, eb <= 0, negative loss, ...)."""
