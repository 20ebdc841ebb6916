"""experiments/docs.py: every number in README.md and docs/ is drawn from results/ JSON, and the
committed pages are what the renderer draws now (a stale number, CLI flag or module fails here)."""
import json
import re
from pathlib import Path

import pytest

from deepsz_caffe.cli import build_parser
from deepsz_caffe.errors import DeepSZError
from experiments import docs

ROOT = Path(__file__).resolve().parents[1]


def test_committed_pages_are_what_the_results_render():
    stale = [str(path.relative_to(ROOT)) for path, (old, new) in docs.render_files().items() if old != new]
    assert not stale, f"stale: {', '.join(stale)}; run `make figures` (python -m experiments.docs)"


def test_every_page_is_rendered_and_readme_fits_the_front_page():
    pages = {path.relative_to(ROOT).as_posix() for path in docs.doc_files()}
    assert {"README.md", "docs/cli.md", "docs/format.md", "docs/scale.md", "docs/gpu.md",
            "docs/reproduction.md"} <= pages
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200  # the front page, not a manual (issue 21)
    assert "make reproduce" in readme and "make test" in readme
    assert "<!-- begin:results -->" in readme and "<!-- begin:speed -->" in readme


class Changed(docs.Sources):
    """The real results with one value changed, as a new run would change it."""

    def __init__(self, name, edit):
        super().__init__(ROOT)
        self.name, self.edit = name, edit

    def json(self, name):
        data = super().json(name)
        if name == self.name:
            data = json.loads(json.dumps(data))
            self.edit(data)
        return data


@pytest.mark.parametrize("page, name, edit, before, after", [
    ("README.md", "experiments/presets_seeds", lambda d: d["runs"][0].update(ratio=70.04),
     "| LeNet-300-100 fc ratio | 55.8x | 57.0x", "| LeNet-300-100 fc ratio | 55.8x | 70.0x"),
    ("docs/scale.md", "bench/dsz_end_to_end", lambda d: d["decode"].update(seconds=1.234),
     "file took <!--= bench/dsz_end_to_end decode.seconds :.2f -->0.56<!--/-->",
     "file took <!--= bench/dsz_end_to_end decode.seconds :.2f -->1.23<!--/-->"),
])
def test_a_new_result_changes_the_page(page, name, edit, before, after):
    text = (ROOT / page).read_text()
    assert before in text
    rendered = docs.render_text(text, Changed(name, edit))
    assert after in rendered and before not in rendered


def test_value_markers(tmp_path):
    (tmp_path / "results" / "bench").mkdir(parents=True)
    (tmp_path / "results" / "bench" / "x.json").write_text(json.dumps(
        {"s": 125.0, "f": 0.98765, "n": 2143, "rows": [{"name": "fc6"}], "b": 2 ** 31}))
    src = docs.Sources(tmp_path)

    def one(marker):
        rendered = docs.render_text(f"a {marker}old<!--/--> b", src)
        return re.fullmatch(r"a <!--=[^>]*-->(.*)<!--/--> b", rendered)[1]

    assert one("<!--= bench/x s /60:.1f -->") == "2.1"
    assert one("<!--= bench/x f *100:.1f -->") == "98.8"
    assert one("<!--= bench/x n :,d -->") == "2,143"
    assert one("<!--= bench/x b /1073741824:.2f -->") == "2.00"
    assert one("<!--= bench/x rows.0.name -->") == "fc6"
    assert one("<!--= bench/x s -->") == "125"
    for marker, error in [("<!--= bench/y s -->", "results/bench/y.json not found"),
                          ("<!--= bench/x rows.1.name -->", "no 'rows.1.name' (at '1')"),
                          ("<!--= bench/x rows.0.name :.1f -->", "cannot format 'fc6'"),
                          ("<!--= bench/x s x2 -->", "a scale starts with * or /")]:
        with pytest.raises(DeepSZError, match=re.escape(error)):
            one(marker)
    with pytest.raises(DeepSZError, match="unknown block 'nope'"):
        docs.render_text("<!-- begin:nope --><!-- end:nope -->", src)


def test_dotted_keys_picks_and_derived_numbers(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text(json.dumps({
        "steps": {"1.5": {"b": 3310.1}, "2.0": {"b": 2425.4}},
        "m": {"chosen": 1, "stable": 0, "points": [{"bytes": 17317}, {"bytes": 12944}, {"bytes": 11239}]},
        "rss": {"a": 42283008, "b": 45027328},
        "jobs": [{"id": "cli/decode/o-is-fifo", "ok": False, "outcome": "accepted", "rss_ratio": 1.01},
                 {"id": "cli/decode/SIGINT-1", "ok": True, "outcome": "interrupted", "rss_ratio": 0.3},
                 {"id": "sz2/bomb/ctx", "ok": False, "outcome": "clean", "rss_ratio": 2.995}]}))
    src = docs.Sources(tmp_path)
    assert src.value("r", "steps.1.5.b") == 3310.1
    assert [src.value("r", f"m.{pick}.bytes") for pick in ("@chosen", "@stable", "@chosen+1")] == \
        [12944, 17317, 11239]
    with pytest.raises(DeepSZError, match=re.escape("no 'steps.3.0.b'")):
        src.value("r", "steps.3.0.b")
    with pytest.raises(DeepSZError, match=re.escape("no 'm.@chosen+2.bytes' (at '@chosen+2')")):
        src.value("r", "m.@chosen+2.bytes")

    def block(args):
        rendered = docs.render_text(f"<!-- begin:{args} -->old<!-- end:{args.split()[0]} -->", src)
        return re.fullmatch(r"<!-- begin:[^>]*-->(.*)<!-- end:\w+ -->", rendered)[1]

    assert block("calc r steps.1.5.b minus steps.2.0.b :,.0f") == "885"
    assert block("calc r m.@chosen.bytes above m.@chosen+1.bytes *100:.0f") == "15"
    assert block("calc r steps.2.0.b below steps.1.5.b *100:.1f") == "26.7"
    assert block("span r rss /1048576:.0f") == "40-43"
    assert block("jobs r") == "3"
    assert block("jobs r ok=False") == "2"
    assert block("jobs r id=cli/* id!=cli/*/SIG*") == "1"
    assert block("jobs r ok=False max:rss_ratio:.1f") == "3.0"
    for args, error in [("calc r steps.1.5.b times steps.2.0.b", "unknown operation 'times'"),
                        ("jobs r ok", "'ok' is not KEY=GLOB"),
                        ("jobs r ok=maybe max:rss_ratio:.1f", "of 0 jobs")]:
        with pytest.raises(DeepSZError, match=re.escape(error)):
            block(args)


def test_max_challenge_reads_each_pick():
    src = docs.Sources()
    table = docs.block_max_challenge(src)
    nncodec = src.json("compare/lenet300")["methods"]["nncodec"]
    stable = nncodec["points"][nncodec["stable"]]
    assert f"{stable['bytes']:,} B, {stable['ratio']:.1f}x" in table.splitlines()[5]
    assert table.splitlines()[5].startswith("| NNCodec, stable pick |")
    assert "BOUND BROKEN" not in table and table.count("(no bound)") == 2


def test_check_and_rewrite(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text('{"ratio": 57.04}')
    (tmp_path / "docs").mkdir()
    page = tmp_path / "docs" / "p.md"
    page.write_text("ratio <!--= r ratio :.1f -->55.0<!--/-->x\n")
    (tmp_path / "README.md").write_text("no markers\n")
    assert docs.main(["--check", "--root", str(tmp_path)]) == 1
    assert "stale: docs/p.md" in capsys.readouterr().err
    assert page.read_text() == "ratio <!--= r ratio :.1f -->55.0<!--/-->x\n"  # --check writes nothing
    assert docs.main(["--root", str(tmp_path)]) == 0
    assert page.read_text() == "ratio <!--= r ratio :.1f -->57.0<!--/-->x\n"
    assert docs.main(["--check", "--root", str(tmp_path)]) == 0
    page.write_text("<!--= missing ratio -->1<!--/-->")
    assert docs.main(["--check", "--root", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == "error: docs/p.md: results/missing.json not found"


def test_cli_reference_has_every_command_at_a_fixed_width(monkeypatch):
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    text = docs.block_cli(docs.Sources())
    assert re.findall(r"^### `deepsz (\S+)`$", text, re.M) == list(commands)
    for name, sub in commands.items():
        for action in sub._actions:
            assert all(opt in text for opt in action.option_strings), (name, action.option_strings)
    for columns in ("60", "200"):  # whatever the terminal, the page is the same
        monkeypatch.setenv("COLUMNS", columns)
        assert docs.block_cli(docs.Sources()) == text
    assert __import__("os").environ["COLUMNS"] == "200"  # and the caller's setting is put back


def test_package_map_lists_every_public_module():
    text = docs.block_package_map(docs.Sources())
    for path in (ROOT / "deepsz_caffe").rglob("*.py"):
        rel = path.relative_to(ROOT / "deepsz_caffe")
        if path.name == "__init__.py":
            assert re.search(rf"^\s+{re.escape(rel.parent.name)}/ ", text, re.M) or rel == Path("__init__.py")
        elif not path.name.startswith("_"):
            assert re.search(rf"^\s+{re.escape(path.name)} +\S", text, re.M), rel


@pytest.mark.parametrize("page", ["README.md", "REPRODUCTION.md", *(
    p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "docs").glob("*.md")))])
def test_relative_links_resolve(page):
    text = (ROOT / page).read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    missing = [t for t in targets if "://" not in t and not (ROOT / page).parent.joinpath(t).exists()]
    assert not missing, f"{page}: broken links {missing}"


def test_reproduction_report_carries_the_rendered_notes():
    notes = (ROOT / "docs" / "reproduction.md").read_text().rstrip()
    assert (ROOT / "REPRODUCTION.md").read_text().startswith(notes + "\n"), \
        "REPRODUCTION.md is older than docs/reproduction.md: run `make figures`"
