"""How every table and figure of the package names and colours things (the experiments'
figures and `deepsz compare`'s report alike): net titles, one colour per codec and method, and
Markdown tables."""

TITLES = {"lenet300": "LeNet-300-100", "lenet5": "LeNet-5", "alexnet": "AlexNet", "vgg16": "VGG-16"}

# One colour per codec / method in every figure (DeepSZ is SZ2, so they share one).
COLORS = {
    "sz2": "#1f77b4", "sz3": "#17becf", "zfp": "#ff7f0e",
    "gzip": "#8c564b", "zstd": "#2ca02c", "blosc": "#9467bd",
    "deepsz": "#1f77b4", "deepsz-best": "#17becf", "deepsz-max": "#000080", "deep-compression": "#d62728",
    "weightless": "#7f7f7f", "nncodec": "#2ca02c", "nncodec-sparse": "#8fbf5a",
    "csr": "#bcbd22", "paper": "#444444", "ours": "#1f77b4",
}
_OTHER = ("#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#ff7f0e")


def title(net: str) -> str:
    return TITLES.get(net, net)


def color(name: str, names: list[str]) -> str:
    """`name`'s colour; names without one get the next of a few others, in `names` order."""
    others = [n for n in names if n not in COLORS]
    return COLORS.get(name) or _OTHER[others.index(name) % len(_OTHER)]


def markdown_lines(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def markdown_table(header: list[str], rows: list[list]) -> str:
    return "\n".join(markdown_lines(header, rows))
