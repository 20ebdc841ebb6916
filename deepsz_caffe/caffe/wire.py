"""`.caffemodel` bytes <-> numpy at memory speed, through the protobuf wire format itself.

A packed `repeated float` is a tag, a varint length and raw little-endian floats, so blobs are
read as zero-copy `np.frombuffer` views and written from the arrays' own memory, not through
protobuf's Python objects (`.tolist()`: ~8x the dense size in RSS, seconds per 100 MB). Pure:
works on bytes, never imports caffe. Parsed (numbers as in the installed caffe.proto):
NetParameter.layer (100), or legacy .layers (2) if there is no `layer`; their name (1 / V1: 4)
and blobs (7 / V1: 6); BlobProto num..width (1-4), data (5), diff (6), shape (7; BlobShape.dim
1), double_data (8), double_diff (9). All else is carried as opaque bytes (protobuf checks it
when it parses the small skeleton). Output is protobuf's byte for byte when the skeleton is
protobuf output (known fields in number order, unknown ones after), as oracle.skeleton's is
("oracle": protobuf's own route, benchmarks/protobuf_route.py, which this module is tested against).
The package's one route to and from model files; its record API (`net_layers`, `Layer`, `Blob`,
`field_at`, `last_value`, `read_varint`, `text`) serves readers of a net's bytes (skeleton.py).
"""
import math
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .. import atomic, varint
from ..errors import CaffeIOError, DeepSZError

MAX_CAFFEMODEL_BYTES = 2 ** 31 - 1  # Caffe reads at most INT_MAX bytes of a model (protobuf limit)

VARINT, I64, LEN, I32 = 0, 1, 2, 5
NET_LAYER, NET_V1_LAYERS = 100, 2
NAME_FIELD = {NET_LAYER: 1, NET_V1_LAYERS: 4}
BLOBS_FIELD = {NET_LAYER: 7, NET_V1_LAYERS: 6}
DATA, DIFF, SHAPE, DOUBLE_DATA, DOUBLE_DIFF = 5, 6, 7, 8, 9
# BlobProto's repeated numbers: field -> (unpacked wire type, bytes per value, numpy dtype)
FIXED = {DATA: (I32, 4, "<f4"), DIFF: (I32, 4, "<f4"),
         DOUBLE_DATA: (I64, 8, "<f8"), DOUBLE_DIFF: (I64, 8, "<f8")}


def _bad(what: str):
    return CaffeIOError(f"not a Caffe model ({what})")


def read_varint(buf, pos: int, end: int) -> tuple[int, int]:
    """(value mod 2**64, next position); at most 10 bytes, as protobuf accepts."""
    try:
        value, pos = varint.decode(buf, pos, end)
    except varint.VarintError as e:
        raise _bad(str(e)) from None
    return value & 0xFFFFFFFFFFFFFFFF, pos


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def field_at(buf, pos: int, end: int) -> tuple[int, int, int, int]:
    """(field, wire type, value start, value end) of the record at `pos`, bounds-checked."""
    key, pos = read_varint(buf, pos, end)
    field, wire = key >> 3, key & 7
    if field == 0 or key > 0xFFFFFFFF:
        raise _bad(f"invalid field key {key}")
    if wire == VARINT:
        return field, wire, pos, read_varint(buf, pos, end)[1]
    if wire == LEN:
        size, pos = read_varint(buf, pos, end)
        stop = pos + size
    elif wire in (I64, I32):
        stop = pos + (8 if wire == I64 else 4)
    else:
        raise _bad(f"field {field} has wire type {wire} (groups/invalid), which Caffe never writes")
    if stop > end:
        raise _bad(f"field {field} runs past the end of its message ({stop} > {end})")
    return field, wire, pos, stop


def _fixed_run(buf, pos: int, end: int, tag: int, width: int) -> int:
    """End of the run of `width`-byte records from `pos` keyed `tag` (an unpacked repeated
    float/double), found by numpy in a doubling window: O(run length), no Python per value."""
    window = 16
    while True:
        count = min(window, (end - pos) // width)
        keys = np.frombuffer(buf, np.uint8, count * width, pos).reshape(count, width)[:, 0]
        stops = np.flatnonzero(keys != tag)
        if len(stops) or count < window:
            return pos + width * (int(stops[0]) if len(stops) else count)
        pos, window = pos + count * width, window * 2


def _decode(buf, offset: int, count: int, dtype: str, stride: int) -> np.ndarray:
    """`count` values of `dtype` at `offset`: a view if packed (stride = item size), else
    gathered from unpacked records (a key byte before each value)."""
    size = np.dtype(dtype).itemsize
    if stride == size:
        return np.frombuffer(buf, dtype, count, offset)
    records = np.frombuffer(buf, np.uint8, count * stride, offset).reshape(count, stride)
    return np.ascontiguousarray(records[:, 1:]).view(dtype).reshape(count)


class Blob:
    """A BlobProto's shape and value chunks, and the records a skeleton drops."""

    def __init__(self, buf, start: int, end: int):
        self.start, self.end, self.insert_at = start, end, None
        self.legacy, self.dims, self.has_shape = [0, 0, 0, 0], [], False
        self.chunks = {f: [] for f in FIXED}  # field -> [(offset, count, dtype, stride)]
        self.strip = []  # (start, end) of every value record
        pos = start
        while pos < end:
            field, wire, vs, ve = field_at(buf, pos, end)
            if self.insert_at is None and not (1 <= field <= 4 and wire == VARINT):
                self.insert_at = pos  # protobuf writes data (5) after num..width, before the rest
            if 1 <= field <= 4 and wire == VARINT:
                self.legacy[field - 1] = _signed(read_varint(buf, vs, ve)[0], 32)
            elif field == SHAPE and wire == LEN:
                self.has_shape = True  # repeated occurrences merge: their dims concatenate
                self.dims += self._dims(buf, vs, ve)
            elif field in FIXED and wire in (LEN, FIXED[field][0]):
                ve = self._values(buf, field, wire, pos, vs, ve, end)
            pos = ve
        if self.insert_at is None:
            self.insert_at = end

    @property
    def has_values(self) -> bool:  # any data, diff or double record (a skeleton's have none)
        return any(self.chunks.values())

    def _values(self, buf, field, wire, rec, vs, ve, end) -> int:
        _, width, dtype = FIXED[field]
        if wire == LEN:
            if (ve - vs) % width:
                raise _bad(f"packed blob field {field} of {ve - vs} bytes, not a multiple of {width}")
            self.chunks[field].append((vs, (ve - vs) // width, dtype, width))
        else:  # unpacked: a run of one-byte key + value records
            ve = _fixed_run(buf, rec, end, field << 3 | wire, width + 1)
            self.chunks[field].append((rec, (ve - rec) // (width + 1), dtype, width + 1))
        self.strip.append((rec, ve))
        return ve

    @staticmethod
    def _dims(buf, start: int, end: int) -> list[int]:
        dims, pos = [], start
        while pos < end:
            field, wire, vs, ve = field_at(buf, pos, end)
            if field == 1 and wire == LEN:
                while vs < ve:
                    value, vs = read_varint(buf, vs, ve)
                    dims.append(_signed(value, 64))
            elif field == 1 and wire == VARINT:
                dims.append(_signed(read_varint(buf, vs, ve)[0], 64))
            pos = ve
        return dims

    def shape(self) -> tuple[int, ...]:
        """As oracle.blob_shape: BlobShape if present, else the legacy 4-D num/channels/h/w."""
        return tuple(self.dims) if self.has_shape else tuple(self.legacy)

    def array(self, buf, layer_name) -> np.ndarray:
        """Its float32 values (double_data wins if non-empty, as in the oracle), zero-copy when
        they are one packed float field."""
        chunks = self.chunks[DOUBLE_DATA] or self.chunks[DATA]
        parts = [_decode(buf, *chunk) for chunk in chunks] or [np.empty(0, np.float32)]
        arr = parts[0] if len(parts) == 1 else np.concatenate(parts)
        if arr.dtype != np.float32:
            with np.errstate(over="ignore"):  # doubles beyond float32 become inf, as in the oracle
                arr = arr.astype(np.float32)
        shape = self.shape()
        if arr.size != math.prod(shape) or min(shape, default=0) < 0:
            raise CaffeIOError(f"layer '{layer_name}': blob has {arr.size} values but shape {shape}")
        return arr.reshape(shape)


class Layer:
    """A (V1)LayerParameter: name, its record's start, its value's span (start, end), its field
    (`which`: NET_LAYER or NET_V1_LAYERS), and each blob's (record, value start, value end)."""

    def __init__(self, buf, record: int, start: int, end: int, which: int):
        self.record, self.start, self.end, self.which = record, start, end, which
        self.name, self.blobs, pos = b"", [], start
        while pos < end:
            field, wire, vs, ve = field_at(buf, pos, end)
            if wire == LEN and field == NAME_FIELD[which]:
                self.name = buf[vs:ve]  # the last occurrence wins, as in protobuf
            elif wire == LEN and field == BLOBS_FIELD[which]:
                self.blobs.append((pos, vs, ve))
            pos = ve
        self.name = text(self.name)

    def blob_values(self, buf) -> "list[Blob]":
        return [Blob(buf, vs, ve) for _, vs, ve in self.blobs]


def text(value) -> str | bytes:
    """A proto2 string as pycaffe gives it: str, or bytes if not valid UTF-8 (b"" for None)."""
    try:
        return bytes(value or b"").decode("utf-8")
    except UnicodeDecodeError:
        return bytes(value)


def last_value(buf, start: int, end: int, field: int, wire_type: int):
    """The raw value of the last `field` record between start and end (protobuf's "last one
    wins" for a singular field), or None."""
    found, pos = None, start
    while pos < end:
        f, w, vs, ve = field_at(buf, pos, end)
        if f == field and w == wire_type:
            found = buf[vs:ve]
        pos = ve
    return found


def net_layers(buf) -> "list[Layer]":
    """Every layer of the net in `buf`: its `layer` field, or the legacy V1 `layers` if it has
    no `layer` (as oracle._layers)."""
    found, pos, end = {NET_LAYER: [], NET_V1_LAYERS: []}, 0, len(buf)
    while pos < end:
        field, wire, vs, ve = field_at(buf, pos, end)
        if field in found and wire == LEN:
            found[field].append((pos, vs, ve))
        pos = ve
    which = NET_LAYER if found[NET_LAYER] else NET_V1_LAYERS
    return [Layer(buf, rec, vs, ve, which) for rec, vs, ve in found[which]]


def _record(field: int, pieces: list) -> list:
    size = sum(len(p) for p in pieces)  # every piece is bytes or a byte-format memoryview
    return [varint.encode_one(field << 3 | LEN) + varint.encode_one(size), *pieces]


def _splice(buf, start: int, end: int, replaced: list) -> list:
    """buf[start:end] as pieces, each (from, to, pieces) of `replaced` (in order) swapped in."""
    pieces, pos = [], start
    for lo, hi, new in replaced:
        pieces += [buf[pos:lo], *new]
        pos = hi
    pieces.append(buf[pos:end])
    return [p for p in pieces if len(p)]


def _rebuild(buf, blob_pieces) -> list:
    """The net as pieces, every blob of every layer with blobs replaced by
    blob_pieces(layer) -> [pieces of each blob's new value]; length prefixes recomputed."""
    new_layers = []
    for layer in net_layers(buf):
        if layer.blobs:
            new_blobs = [(brec, bve, _record(BLOBS_FIELD[layer.which], pieces))
                         for (brec, _, bve), pieces in zip(layer.blobs, blob_pieces(layer))]
            new_layers.append((layer.record, layer.end,
                               _record(layer.which, _splice(buf, layer.start, layer.end, new_blobs))))
    return _splice(buf, 0, len(buf), new_layers)


def _bytes_view(data) -> memoryview:  # any contiguous bytes-like input, as bytes
    try:
        return memoryview(data).cast("B")
    except TypeError as e:
        raise CaffeIOError(f"caffemodel data must be a contiguous bytes-like object ({e})") from None


def read_blobs(data, *, arrays: bool = True) -> "tuple[OrderedDict[str, list[np.ndarray]], bytes]":
    """({layer name: [float32 blob arrays]}, skeleton) from a caffemodel's bytes.

    Equal to (oracle.blobs(net), oracle.skeleton(net)) for the parsed net. Packed float
    blobs are zero-copy views into `data` (writable if it is a bytearray; possibly unaligned);
    others are decoded. The skeleton is small: parse it with protobuf for names, types, etc.
    `arrays=False` skips building (and size-checking) the arrays."""
    buf, out = _bytes_view(data), OrderedDict()

    def strip(layer):
        blobs = [Blob(buf, vs, ve) for _, vs, ve in layer.blobs]
        if arrays:
            out[layer.name] = [b.array(buf, layer.name) for b in blobs]
        return [_splice(buf, b.start, b.end, [(lo, hi, []) for lo, hi in b.strip]) for b in blobs]

    skeleton = b"".join(_rebuild(buf, strip))
    return out, skeleton


def skeleton(data) -> bytes:
    """The caffemodel's bytes with every blob's data/diff/double_data/double_diff removed:
    byte-identical to oracle.skeleton(net) for protobuf-written input."""
    return read_blobs(data, arrays=False)[1]


def chunks(skeleton_bytes, values: "dict[str, list[np.ndarray]]") -> list:
    """oracle.fill(skeleton, values).SerializeToString() as pieces: small bytes and views of
    the float32 arrays (no copy of the model); fill's CaffeIOErrors for missing/bad values."""
    buf = _bytes_view(skeleton_bytes)

    def fill(layer):
        arrays = values.get(layer.name)
        if arrays is None or len(arrays) != len(layer.blobs):
            raise CaffeIOError(f"no values for the {len(layer.blobs)} blobs of layer '{layer.name}'")
        return [_filled(buf, Blob(buf, vs, ve), arr, layer.name)
                for (_, vs, ve), arr in zip(layer.blobs, arrays)]

    return _rebuild(buf, fill)


def _filled(buf, blob: Blob, arr, layer_name) -> list:
    """A skeleton blob's pieces with `arr` as its packed data, where protobuf puts field 5."""
    arr = np.asarray(arr)
    shape = blob.shape()
    if arr.size != math.prod(shape):
        raise CaffeIOError(f"layer '{layer_name}': {arr.size} values for blob shape {shape}")
    if blob.chunks[DATA]:  # fill would append to them; a skeleton never has any
        raise CaffeIOError(f"layer '{layer_name}': the skeleton's blob already holds data")
    head, tail = buf[blob.start:blob.insert_at], buf[blob.insert_at:blob.end]
    if not arr.size:  # protobuf writes no record for an empty packed field
        return [p for p in (head, tail) if len(p)]
    raw = memoryview(np.ascontiguousarray(arr, dtype="<f4").reshape(-1).view(np.uint8))
    return [p for p in (head, *_record(DATA, [raw]), tail) if len(p)]


def read_caffemodel(path) -> "tuple[OrderedDict[str, list[np.ndarray]], bytes]":
    """read_blobs of a file, its arrays viewing the one buffer read (peak memory ~ the file
    size); CaffeIOError, as oracle.read_net, for unreadable files and files without weights."""
    buf = atomic.read_array(path, "weights", CaffeIOError, MAX_CAFFEMODEL_BYTES,
                            " (Caffe reads no larger model)")
    try:
        blobs, skel = read_blobs(buf)
    except CaffeIOError as e:
        raise CaffeIOError(f"{path}: {e}") from None
    if not blobs:
        raise CaffeIOError(f"{path} holds no weights: is it a .caffemodel (not a prototxt/solverstate)?")
    return blobs, skel


def write_caffemodel(skeleton_bytes, values: "dict[str, list[np.ndarray]]", path, *,
                     fsync: bool = True) -> Path:
    """Write oracle.fill(skeleton, values).SerializeToString() to `path`, byte for byte, by
    streaming `chunks` (no copy of the model) into atomic.replacing's temporary file."""
    pieces = chunks(skeleton_bytes, values)  # every check before anything touches the disk
    try:
        with atomic.replacing(path) as tmp:
            with open(tmp, "r+b") as f:  # it exists, empty; "wb" would truncate it,
                # after which ext4 flushes the whole file at close (auto_da_alloc): 1.5x slower
                for piece in pieces:
                    f.write(piece)
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
    except OSError as e:
        raise CaffeIOError(f"cannot write {path}: {e.strerror or e}") from None
    except DeepSZError as e:  # atomic's: the directory does not exist
        raise CaffeIOError(str(e)) from None
    return Path(path)
