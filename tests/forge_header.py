"""Header forgeries: every field of the JSON header (top level, layer and blob entries) given a
wrong type, a non-finite, negative, zero, huge or off-by-one value, another entry's value, or
removed; plus duplicated and 4,000-fold entries, deep nesting, duplicate JSON keys, a header that
is not an object, and forged section tables. Fields are found by walking the genuine header, so
new fields are forged too."""
import math

from forge import DELETE, Forgery, header_text, nested_json, serialize, with_value

# Free text no decoder can check against anything (not forged with other strings).
FREE_TEXT = {"created_by", "network", "source_sha256", "codec_versions"}
# Another positive finite bound decodes to the same weights: only a signature could tell.
UNCHECKABLE_VALUES = {"error_bound"}
STRICT = {"str", "list", "dict", "null", "bool", "float", "neg", "nan", "inf", "-inf", "missing",
          "nested", "dup", "x4000", "dupkey", "not-object"}
NEST_DEPTH = 100_000
FULL = {"layers": 1, "blobs": 1}  # entries forged with every variant; the others lose each key


def _type_variants(value) -> list:
    """(kind, value) pairs of another JSON type than `value`'s."""
    out = [("list", [value]), ("dict", {}), ("null", None), ("bool", True)]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        out.append(("float", 1.5))
    if not isinstance(value, str):
        out.append(("str", str(value)))
    if isinstance(value, int) and not isinstance(value, bool):
        out += [("float", float(value)), ("float", value + 0.5)]
    return [(k, v) for k, v in out if type(v) is not type(value)]


def _number_variants(key: str, value) -> list:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return []
    out = [("neg", -value if value else -1), ("nan", math.nan), ("inf", math.inf), ("-inf", -math.inf)]
    if value:
        out.append(("zero", 0))
    if key in UNCHECKABLE_VALUES:
        return out
    if isinstance(value, int):
        out += [("huge", 10 ** 12), ("huge", 2 ** 63), ("off", value + 1)]
        out += [("off", value - 1)] if value else []
    else:
        out += [("huge", 1e12), ("off", value + 1.0)]
    return out


def _shape_variants(shape: list) -> list:
    r, rest = shape[0], shape[1:]
    out = [("empty", []), ("zero", [0, *rest]), ("neg", [-r, *rest]), ("off", [r + 1, *rest]),
           ("off", [*shape[:-1], shape[-1] - 1]), ("flat", [math.prod(shape)]), ("rank", [*shape, 1]),
           ("rank", [1, *shape]), ("huge", [2 ** 31] * 2), ("huge", [10 ** 12]), ("huge", [2 ** 63]),
           ("float", [float(r), *rest]), ("str", [str(r), *rest]), ("bool", [True, *rest]),
           ("null", [None, *rest]), ("list", [[r], *rest]), ("nan", [math.nan, *rest])]
    if len(shape) > 1 and shape[::-1] != shape:
        out.append(("transposed", shape[::-1]))
    return out


def _string_variants(key: str, value: str, names: list[str]) -> list:
    from deepsz_caffe.codecs import LOSSY_CODECS
    from deepsz_caffe.codecs.lossless import ALL_INDEX_CODECS

    if key in FREE_TEXT:
        return []
    others = {"lossy_codec": [*LOSSY_CODECS, "RAW", "nosuch"],
              "index_codec": [*ALL_INDEX_CODECS, "best", "nosuch"],
              "name": [*names, "nosuch", "ip1/data"], "layer": [*names, "nosuch"],
              "type": ["Convolution"], "format": ["deepsz-caffe2"]}.get(key, [])
    return [("empty", "")] + [("other", v) for v in others if v != value]


def field_variants(key: str, value, names: list[str]) -> list:
    """(kind, new value) for one field; nothing that decodes legitimately."""
    out = _type_variants(value) + [("missing", DELETE)]
    if isinstance(value, list) and value and all(isinstance(d, int) for d in value):
        out += _shape_variants(value)
    elif isinstance(value, str):
        out += _string_variants(key, value, names)
    else:
        out += _number_variants(key, value)
    return out


def _forge(g, path: tuple, kind: str, value, tag: str = "") -> Forgery:
    where = ".".join(str(p) for p in path)
    suffix = f"{kind}{tag}={value!r}"[:40] if value is not DELETE else kind
    return Forgery(f"{g.name}/header/{where}/{suffix}", g.image(with_value(g.header, path, value)),
                   inspect="reject" if kind in STRICT else "safe")


def _entry_forgeries(g, list_key: str):
    """Every field of every entry of header[list_key] ("layers" or "blobs")."""
    entries = g.header[list_key]
    names = [e["name"] for e in entries]
    for i, entry in enumerate(entries):
        for key, value in entry.items():
            variants = field_variants(key, value, [n for n in names if n != entry.get(key)])
            if i != FULL[list_key]:  # the other entries: each key removed
                yield _forge(g, (list_key, i, key), "missing", DELETE)
                continue
            for kind, new in variants:
                yield _forge(g, (list_key, i, key), kind, new)
            for j, other in enumerate(entries):  # another entry's value for the same field
                if j != i and key in other and other[key] != value and key not in UNCHECKABLE_VALUES:
                    yield _forge(g, (list_key, i, key), "swap", other[key], f"{j}")


def _top_forgeries(g):
    for key, value in g.header.items():
        if isinstance(value, list):  # the entry lists: their own wrong types, empty, nested
            variants = _type_variants(value) + [("missing", DELETE), ("empty", []), ("list", [1])]
        else:
            variants = field_variants(key, value, [])
        for kind, new in variants:
            yield _forge(g, (key,), kind, new)
        if isinstance(value, dict):  # codec_versions: each entry
            for sub, v in value.items():
                for kind, new in _type_variants(v) + [("missing", DELETE)]:
                    yield _forge(g, (key, sub), kind, new)


def _structure_forgeries(g):
    """Duplicates, huge repetition, deep nesting, duplicate keys, non-object headers."""
    h, layers, blobs = g.header, g.header["layers"], g.header["blobs"]
    for key, entries in (("layers", layers), ("blobs", blobs)):
        for what, forged in (("dup", [*entries, entries[0]]), ("x4000", [entries[0]] * 4000)):
            yield Forgery(f"{g.name}/header/{key}/{what}", g.image({**h, key: forged}), inspect="reject")
    marker = '"@@NEST@@"'
    for path in (("layers",), ("layers", 1, "shape"), ("blobs", 1, "shape"), ("layers", 1, "nnz")):
        text = header_text(with_value(h, path, "@@NEST@@"), g.sections).decode()
        deep = text.replace(marker, nested_json(NEST_DEPTH)).encode()
        where = ".".join(map(str, path))
        yield Forgery(f"{g.name}/header/{where}/nested", serialize(deep, g.sections), inspect="reject")
    text = header_text(h, g.sections).decode()
    dupkey = text.replace('"blobs": ', '"layers": [], "blobs": ', 1)
    yield Forgery(f"{g.name}/header/dupkey", serialize(dupkey.encode(), g.sections), inspect="reject")
    for encoding in ("utf-8-sig", "utf-16", "utf-16-le", "utf-32", "utf-32-be"):  # json.loads takes all
        yield Forgery(f"{g.name}/header/encoding-{encoding}", serialize(text.encode(encoding), g.sections),
                      inspect="reject")
    for kind, body in (("array", b"[]"), ("null", b"null"), ("number", b"1"), ("string", b'"x"')):
        yield Forgery(f"{g.name}/header/not-object-{kind}", serialize(body, g.sections), inspect="reject")


def _table_forgeries(g):
    """Section tables a lax reader accepts: types coerced by int()/str(), repeated names, extras."""
    from forge import section_table

    table = section_table(g.sections)
    i = next(k for k, s in enumerate(table) if s["name"].endswith("/data"))
    for kind, key, value in (("str", "length", str(table[i]["length"])),
                             ("float", "length", float(table[i]["length"])),
                             ("str", "crc32", str(table[i]["crc32"])),
                             ("float", "crc32", float(table[i]["crc32"]))):
        forged = [dict(s) for s in table]
        forged[i][key] = value
        yield Forgery(f"{g.name}/table/{table[i]['name']}.{key}/{kind}",
                      serialize(g.header, g.sections, table=forged), inspect="reject")
    extra = {**g.sections, "ip9/data": g.sections[table[i]["name"]]}
    yield Forgery(f"{g.name}/table/unreferenced-section", serialize(g.header, extra))
    # the same name twice: the reader keeps the second, so the first can carry anything
    name = table[i]["name"]
    twice = {"skeleton": g.sections["skeleton"], "decoy": b"\x00" * 64, **g.sections}
    forged = section_table(twice)
    forged[1]["name"] = name
    yield Forgery(f"{g.name}/table/duplicate-name", serialize(g.header, twice, table=forged),
                  inspect="reject")


def generate(genuine: dict):
    """All header forgeries of the first genuine file, and codec-name ones of every file."""
    first = next(iter(genuine.values()))
    yield from _top_forgeries(first)
    yield from _entry_forgeries(first, "layers")
    yield from _entry_forgeries(first, "blobs")
    yield from _structure_forgeries(first)
    yield from _table_forgeries(first)
    for g in list(genuine.values())[1:]:
        names = [m["name"] for m in g.header["layers"]]
        for i, meta in enumerate(g.header["layers"]):
            for key in ("lossy_codec", "index_codec"):
                for kind, new in _string_variants(key, meta[key], names):
                    if kind == "other":
                        yield _forge(g, ("layers", i, key), kind, new)
