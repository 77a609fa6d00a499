"""The report read as a reviewer reads it (issue 15, points 9 to 14), on the rendered HTML of
`etagwatch report` over the shipped sample captures, parsed with the standard library:

- it opens with what was found, linking to the sections;
- every non-stable resource is named in its section;
- evidence is shown in full, never cut mid-word;
- identifier rows show per client the value, first and last seen and the 304s;
- the scatter draws each point at its true values and its caption says how shared points are
  drawn;
- the title, like capture data, is escaped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from exchange_factory import frame, visits
from support import SAMPLE_CAPTURES

from analysis.cli import main
from analysis.report_evidence import evidence_lines
from analysis.reporting import identifiers
from analysis.reporting.data import ReportData, analyse, load_report_data
from analysis.reporting.evidence_rows import anchor
from analysis.reporting.third_parties import resource_keys

HOSTILE_TITLE = '<script>alert(1)</script>&"'
NON_STABLE = ("identifier", "likely-identifier", "churn", "changed", "unstable", "undetermined")
SECTION_OF = {"identifier": "Identifiers", "likely-identifier": "Identifiers", "churn": "Churn",
              "changed": "Other verdicts", "unstable": "Other verdicts",
              "undetermined": "Other verdicts"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def elements(self) -> list[Node]:
        return [c for c in self.children if isinstance(c, Node)]

    def iter(self, tag: str | None = None):
        for c in self.elements():
            if tag is None or c.tag == tag:
                yield c
            yield from c.iter(tag)

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())


class TreeBuilder(HTMLParser):
    """Just enough of a DOM: elements, attributes, text (script and style text kept apart)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs))
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if self.stack[-1].tag not in ("script", "style"):
            self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def sections(doc: Node) -> dict[str, list[Node | str]]:
    """The document's flat sequence of blocks between <h2> headings, per heading (the part
    before the first ":"), in document order: nbconvert puts each cell in its own div, so a
    section is every node after its heading up to the next heading."""
    order: list[Node | str] = []

    def walk(node: Node) -> None:
        for c in node.children:
            if isinstance(c, Node) and c.tag == "h2":
                order.append(c)
            elif isinstance(c, Node) and any(True for _ in c.iter("h2")):
                walk(c)
            else:
                order.append(c)

    walk(doc)
    out: dict[str, list[Node | str]] = {}
    current = None
    for item in order:
        if isinstance(item, Node) and item.tag == "h2":
            current = item.text().replace("¶", "").split(":")[0].strip()
            out[current] = []
        elif current is not None:
            out[current].append(item)
    return out


def section_text(items: list[Node | str]) -> str:
    return "".join(i if isinstance(i, str) else i.text() for i in items)


def find(items: list[Node | str], pred) -> list[Node]:
    found = []
    for i in items:
        if isinstance(i, Node):
            if pred(i):
                found.append(i)
            found.extend(n for n in i.iter() if pred(n))
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Node, ReportData]:
    """The sample captures' report (with a hostile --title), its parse, and the data the
    detectors produce from the very store the report ingested into."""
    tmp = tmp_path_factory.mktemp("reading")
    html_path, db = tmp / "report.html", tmp / "store.sqlite"
    status = main(["report", str(SAMPLE_CAPTURES), "--db", str(db), "-o", str(html_path),
                   "--title", HOSTILE_TITLE, "--quiet"])
    assert status == 0
    html = html_path.read_text(encoding="utf-8")
    return html, parse(html), load_report_data([db])


def detail_row(doc: Node, url: str) -> Node:
    """The full-width evidence row under a resource's row."""
    rows = [n for n in doc.iter("tr") if n.attrs.get("id") == anchor(url)]
    assert len(rows) == 1, url
    for table in doc.iter("tbody"):
        kids = table.elements()
        if rows[0] in kids:
            following = kids[kids.index(rows[0]) + 1]
            assert "etagwatch-detail" in following.classes()
            return following
    raise AssertionError(url)


@pytest.mark.slow
def test_report_opens_with_what_was_found_linking_to_sections(rendered) -> None:
    _, doc, data = rendered
    found = sections(doc)
    assert next(iter(found)) == "What was found"
    block = find(found["What was found"], lambda n: "etagwatch-headline" in n.classes())
    assert len(block) == 1
    text = " ".join(block[0].text().split())
    counts = data.resources["verdict"].value_counts()
    for verdict in NON_STABLE:
        if counts.get(verdict, 0):
            assert f"{counts[verdict]} {verdict}" in text, verdict
    for verdict in ("identifier", "churn"):  # the worst of each, with its host
        worst = data.resources[data.resources["verdict"] == verdict]
        for host in worst["host"].head(2):
            assert host in text, host
    assert "Conformance:" in text and "no exchange broke a rule" in text
    ids = {n.attrs["id"] for n in doc.iter() if n.attrs.get("id")}
    links = [a.attrs["href"][1:] for a in block[0].iter("a") if (a.attrs.get("href") or "").startswith("#")]
    for target in ("identifiers", "churn", "other-verdicts", "conformance", "overview"):
        assert target in links, target
    assert set(links) <= ids, set(links) - ids
    # each named identifier links to its own row
    first = data.resources[data.resources["verdict"] == "identifier"]["url"].iloc[0]
    assert anchor(first) in links


@pytest.mark.slow
def test_every_non_stable_resource_is_named_in_its_section(rendered) -> None:
    _, doc, data = rendered
    found = sections(doc)
    judged = data.resources[data.resources["verdict"].isin(NON_STABLE)]
    assert "unstable" in set(judged["verdict"])  # the sample captures hold one
    for url, verdict in zip(judged["url"], judged["verdict"], strict=True):
        assert url in section_text(found[SECTION_OF[verdict]]), (verdict, url)


@pytest.mark.slow
def test_evidence_is_shown_in_full(rendered) -> None:
    _, doc, data = rendered
    judged = data.resources[data.resources["verdict"].isin(NON_STABLE)]
    for _, row in judged.iterrows():
        detail = detail_row(doc, row["url"])
        text = " ".join(detail.text().split())
        assert " ".join(str(row["explanation"]).split()) in text
        lines = evidence_lines(row["verdict"], row["evidence"])
        assert lines, row["verdict"]
        for line in lines:
            assert " ".join(line.split()) in text, line
        # every field, untouched, behind a <details>
        pre = [p for d in detail.iter("details") for p in d.iter("pre")]
        assert len(pre) == 1
        assert json.loads(pre[0].text()) == json.loads(json.dumps(row["evidence"], default=str))
        shown = text.replace(pre[0].text(), "")
        assert "…" not in shown.split("Per client")[0], row["url"]  # nothing cut


@pytest.mark.slow
def test_identifier_rows_show_each_clients_value_first_last_and_304s(rendered) -> None:
    _, doc, data = rendered
    ex = data.exchanges.assign(key=resource_keys(data))
    hits = data.resources[data.resources["verdict"].isin(("identifier", "likely-identifier"))]
    assert len(hits) >= 2
    for url in hits["url"]:
        tables = list(detail_row(doc, url).iter("table"))
        assert len(tables) == 1, url
        heads = [th.text() for th in tables[0].iter("th")]
        assert heads[:4] == ["client", "value held", "first seen", "last seen"]
        by_client = {tr.elements()[0].text(): tr.elements() for tr in tables[0].iter("tr")
                     if tr.elements() and tr.elements()[0].tag == "td"}
        mine = ex[ex["key"] == url]
        assert set(by_client) == set(mine["client"])
        for client, group in mine.groupby("client"):
            cells = dict(zip(heads, by_client[client], strict=True))
            group = group.sort_values("started")
            ok304 = group[pd.to_numeric(group["status"]) == 304]
            held = ok304["req_if_none_match"].dropna().unique()
            codes = [c.attrs.get("title") for c in cells["value held"].iter("code")]
            assert set(held) <= set(codes), (client, held, codes)
            when = pd.to_datetime(group["started"], unit="s", utc=True)
            assert cells["first seen"].text() == when.min().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
            assert cells["last seen"].text().endswith(when.max().strftime("%H:%M:%S.%f")[:-3])
            assert cells["304s"].text() == str(len(ok304))
            times = pd.to_datetime(ok304["started"], unit="s", utc=True)
            assert cells["304 at (UTC)"].text().split(", ") == [
                t.strftime("%H:%M:%S.%f")[:-3] for t in times]


@pytest.mark.slow
def test_scatter_points_sit_on_their_true_values_and_the_caption_says_how(rendered) -> None:
    _, doc, data = rendered
    fig = identifiers.values_vs_clients_figure(data)
    ax = fig.axes[0]
    res = identifiers.etag_resources(data)
    assert len(ax.collections) == res["verdict"].nunique() >= 4
    for coll in ax.collections:
        verdict = coll.get_label().split(" (")[0]
        truth = res[res["verdict"] == verdict][["clients", "values"]].drop_duplicates()
        got = sorted(map(tuple, np.asarray(coll.get_offsets())))
        assert got == sorted(map(tuple, truth.to_numpy(dtype=float))), verdict
    # the two identifiers and the likely identifier of the samples share (6, 6): one bubble
    # labelled 3, at 6 and 6 exactly
    assert [t.get_text() for t in ax.texts if tuple(t.xy) == (6, 6)] == ["3"]
    figure = [f for f in doc.iter("figure")
              if any("Distinct ETag values" in (i.attrs.get("alt") or "") for i in f.iter("img"))]
    assert len(figure) == 1
    caption = " ".join(next(figure[0].iter("figcaption")).text().split())
    assert "nothing is jittered" in caption and "share one bubble" in caption
    assert "wedges" in caption


@pytest.mark.slow
def test_title_is_escaped_like_capture_data(rendered) -> None:
    html, doc, _ = rendered
    assert "<script>alert(1)" not in html
    assert [t.text() for t in doc.iter("title")] == [HOSTILE_TITLE]
    assert [h.text() for h in doc.iter("h1")] == [HOSTILE_TITLE]
    assert not [s for s in doc.iter("script") if "alert(1)" in s.text()]


def test_per_client_rows_escape_capture_data() -> None:
    url = "https://t.example.net/pixel.gif"
    records = (visits("<b>c0</b>", url, '"<i>one</i>0123456789abcdef"', third_party=True)
               + visits("<b>c1</b>", url, '"<i>two</i>fedcba9876543210"', third_party=True,
                        start=2_000_000_000.0))
    data = analyse(frame(records))
    row = data.resources[data.resources["url"] == url].iloc[0]
    markup = identifiers.per_client_html(data, resource_keys(data), row, 30)
    doc = parse(markup)
    assert not list(doc.iter("b")) and not list(doc.iter("i"))
    text = doc.text()
    assert "<b>c0</b>" in text and "<b>c1</b>" in text
    titles = {c.attrs.get("title") for c in doc.iter("code")}
    assert '"<i>one</i>0123456789abcdef"' in titles
