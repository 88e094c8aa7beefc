"""`pseval report` of any set of records: an eval --out store, a SAEBench-style results folder, record files; the
templates' escaping, Neuronpedia links, the L0 / width figures of foreign SAEs."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from pseval.cli import main
from pseval.errors import ConfigError, DataFormatError
from pseval.study.inspect import (
    ContextExample,
    FeatureStat,
    FeatureValue,
    SenseView,
    WordInspection,
    concentration,
    render_html,
)
from pseval.study.record_sets import load_record_set
from pseval.study.report import build_panels, panel_view, write_report
from pseval.study.report import render_html as render_report
from tests.study.chromium import load_page
from tests.study.foreign import LAYERS, foreign_records, neuronpedia_of, write_saebench, write_store

NEURONPEDIA = "https://www.neuronpedia.org/"


@pytest.fixture(scope="module")
def foreign(tmp_path_factory, wic_dev):
    root = tmp_path_factory.mktemp("foreign")
    return root, foreign_records(root, wic_dev)


@pytest.mark.slow
def test_report_of_an_eval_store_of_foreign_saes(foreign, tmp_path):
    """A store without sweep.json (what `eval --out` keeps): HTML, CSV, claims, L0/width figures, Neuronpedia links,
    inspect pages; both pages render in headless Chromium without console errors."""
    _, records = foreign
    store = write_store(records, tmp_path / "results")
    res = CliRunner().invoke(main, ["report", str(store), "--bootstrap-resamples", "50"])
    assert res.exit_code == 0, res.output
    out = store / "report"
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert md.startswith("# PS-Eval report\n") and "4 cell(s) of 4 SAE(s) at 2 hook(s)" in md
    # pseval did not train them: their convergence is unknown, never claimed.
    assert "Every SAE" not in md and "Convergence not known for any SAE here" in md
    # cells.csv: one row per record, its numbers.
    from pseval.study.cells_csv import read_cells_csv
    rows = {(r["sae"], r["hook"]): r for r in read_cells_csv(out / "cells.csv")}
    assert len(rows) == 4
    for r in records:
        row = rows[r.sae_name, r.eval_config.hook_name]
        m = r.eval_result_metrics
        assert float(row["f1"]) == m.ps_eval.f1 and int(row["pairs"]) == m.counts.pairs_scored
        assert float(row["l0"]) == r.eval_result_metrics.reconstruction.l0
    (claims,) = json.loads((out / "claims.json").read_text()).values()  # foreign SAEs: no training metadata
    assert claims and all(c["verdict"] for c in claims)
    # PS-Eval against L0 and width, one series per hook.
    names = {p.name.rsplit("_", 1)[-1] for p in (out / "figures").glob("*.png")}
    assert {"l0.png", "width.png"} <= names
    assert page.count("data:image/png;base64,") == len(list((out / "figures").glob("*.png")))
    # The top feature links to Neuronpedia for the SAEs that carry an id, and is plain text for the others.
    for r in records:
        layer = int(r.eval_config.hook_name.split(".")[1])
        width = r.sae_cfg_dict["d_sae"]
        top = r.eval_result_metrics.concentration.top_feature
        row = next(tr for tr in re.findall(r"<tr>.*?</tr>", page, re.S)
                   if f"<td>{r.eval_config.hook_name}</td><td>{r.sae_name}</td>" in tr)
        np_id = neuronpedia_of(layer, width)
        if np_id:
            assert f'<a href="{NEURONPEDIA}{np_id}/{top}">' in row
        else:
            assert NEURONPEDIA not in row and f"(#{top})" in row
    assert page.count(NEURONPEDIA) == len(LAYERS)  # one narrow SAE per hook
    # The inspect pages of the best and worst SAE: feature ids link exactly when the SAE has an id.
    inspected = sorted((out / "inspect").rglob("*.html"))
    assert len(inspected) == 2
    for p in inspected:
        insp = WordInspection.model_validate_json(p.with_suffix(".json").read_text())
        layer, width = int(insp.hook_name.split(".")[1]), insp.d_sae
        assert insp.neuronpedia_id == neuronpedia_of(layer, width)
        text = p.read_text()
        assert (f'href="{NEURONPEDIA}{insp.neuronpedia_id}/' in text) == (insp.neuronpedia_id is not None)
        assert (NEURONPEDIA in text) == (insp.neuronpedia_id is not None)
    assert load_page(out / "report.html", tmp_path) == []
    assert load_page(inspected[0], tmp_path) == []


@pytest.mark.slow
def test_saebench_folders_and_record_files_give_the_same_cells(foreign, tmp_path):
    """The same records read from a store, a SAEBench results folder (another eval's result beside them is passed
    over) and a list of files (one also inside a folder given: reported once) make the same cells.csv."""
    _, records = foreign
    store = write_store(records, tmp_path / "store")
    bench = write_saebench(records, tmp_path / "bench")
    files = sorted((bench / "eval_results" / "ps_eval").glob("*.json"))
    texts = []
    for paths in ([store], [bench], files, [store, files[0]]):
        out = tmp_path / f"report{len(texts)}"
        write_report(paths, out, n_boot=50, inspect=False, log=lambda _: None)
        texts.append((out / "cells.csv").read_text())
    assert len(texts[0].splitlines()) == 1 + len(records)
    assert texts[1:] == [texts[0]] * 3
    # Files without --out: the command asks for one before reading anything.
    res = CliRunner().invoke(main, ["report", str(files[0]), str(files[1])])
    assert res.exit_code == 2 and "needs --out" in res.output


@pytest.mark.slow
def test_a_script_in_an_sae_name_is_escaped(foreign, tmp_path):
    _, records = foreign
    evil = "<script>alert(1)</script>"
    recs = [r.model_copy(update={"sae_name": f"{evil}{i}"}) for i, r in enumerate(records)]
    panels = build_panels(recs, n_boot=50)
    page = render_report(evil, [panel_view(p, 50, 0, []) for p in panels], tmp_path)
    assert "<script" not in page and page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= len(recs) + 1


def test_folders_without_records_and_files_that_are_not_records_are_named(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=f"{empty}: no PS-Eval records here"):
        load_record_set([empty])
    other = tmp_path / "other" / "core"
    other.mkdir(parents=True)
    (other / "x_eval_results.json").write_text(json.dumps({"eval_type_id": "core"}))
    with pytest.raises(ConfigError, match=r"no PS-Eval records here \(1 result file\(s\) of other evals\)"):
        load_record_set([tmp_path / "other"])
    with pytest.raises(DataFormatError, match="not a PS-Eval record") as exc:
        load_record_set([other / "x_eval_results.json"])
    assert "x_eval_results.json" in str(exc.value)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(DataFormatError, match="broken.json"):
        load_record_set([broken])
    (tmp_path / "store" / "cells").mkdir(parents=True)
    with pytest.raises(ConfigError, match="no finished cell"):
        load_record_set([tmp_path / "store"])
    res = CliRunner().invoke(main, ["report", str(empty)])
    assert res.exit_code != 0 and "no PS-Eval records here" in res.output


def _inspection(neuronpedia_id: str | None, name: str = "sae") -> WordInspection:
    """A one-sense inspection written by hand (the page is what is tested, not the numbers)."""
    ex = ContextExample(source="x.txt:1", context="a <script>bat</script> flew", span=(10, 13), top_feature=7,
                        top_value=2.0, values=[FeatureValue(feature=7, value=2.0), FeatureValue(feature=3, value=1.0)])
    sense = SenseView(sense="bat_animal", description="class 0: bat_animal", contexts=1, contexts_read=1,
                      top_features=[FeatureStat(feature=7, mean_activation=2.0, firing_rate=1.0, top_share=1.0)],
                      concentration=concentration([7]), examples=[ex])
    return WordInspection(word="bat", model_name="minilm", hook_name="blocks.3.hook_resid_post", sae_name=name,
                          sae_source="runs/x", d_sae=768, neuronpedia_id=neuronpedia_id, dataset="coarsewsd:x",
                          grouping="classes", conflicting_pairs=0, protocol="pseval", readout="template",
                          template="t", multi_token="first", max_per_sense=200, contexts=1, contexts_read=1,
                          dropped={}, senses_omitted=0, concentration=concentration([7]), senses=[sense], shared=[],
                          pseval_version="0", git_commit=None)


def test_inspect_page_links_features_to_neuronpedia_only_when_known_and_escapes():
    linked = render_html(_inspection("minilm/3-res-x2", "<script>alert(1)</script>"))
    assert f'<a href="{NEURONPEDIA}minilm/3-res-x2/7">f7</a>' in linked
    assert f'<a href="{NEURONPEDIA}minilm/3-res-x2/3">f3</a>' in linked
    assert "<script" not in linked and "&lt;script&gt;alert(1)&lt;/script&gt;" in linked
    assert "a &lt;script&gt;<mark>bat</mark>&lt;/script&gt; flew" in linked  # the word marked, the rest escaped
    plain = render_html(_inspection(None))
    assert "neuronpedia" not in plain.lower() and "<td>f7</td>" in plain
