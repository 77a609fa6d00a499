"""Live verdicts: comments and markers on flows, per-host counters, detector re-runs, with the
judge in the proxy and in the store's writer process (the same verdicts either way)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from addons.annotator import Annotator
from addons.findings import Findings
from addons.live_checks import ERROR, IDENTIFIER, MARKERS, OPEN, WASTE, Verdict
from addons.recorder import Recorder

URL = "http://cdn.test/pixel.gif"


def flow(
    method: str = "GET",
    url: str = URL,
    status: int = 200,
    req: dict[str, str] | None = None,
    resp: dict[str, str] | None = None,
    body: bytes = b"GIF89a",
    peer: str = "10.0.0.1",
) -> http.HTTPFlow:
    f = tflow.tflow()
    f.client_conn.peername = (peer, 40000)
    f.request = http.Request.make(method, url, b"", req or {})
    f.response = http.Response.make(status, b"" if status == 304 else body, resp or {})
    return f


class Live:
    """A recorder feeding an annotator, wired as the entry script wires them."""

    def __init__(self, tctx, rec: Recorder, ann: Annotator, loop: asyncio.AbstractEventLoop) -> None:
        self.tctx, self.rec, self.ann, self.loop = tctx, rec, ann, loop

    def send(self, f: http.HTTPFlow) -> http.HTTPFlow:
        """One finished flow; returns when its verdicts are on it, wherever it was judged."""
        self.rec.response(f)
        if self.rec.judged_in_writer:
            self.rec.flush()  # the child sends verdicts before it answers the flush
            self.loop.run_until_complete(asyncio.sleep(0.01))  # delivered on the loop
        return f

    def counters(self) -> dict[str, dict[str, int]]:
        return Findings(self.rec, self.ann).host_counters()


async def _running(rec: Recorder) -> None:
    rec.running()


@contextlib.contextmanager
def wired(judge: str, tmp_path: Path) -> Iterator[Live]:
    """``judge``: 'proxy' (flows streamed to a file, so judged on the event loop), 'writer'
    (the store's writer process) or 'judge-only' (no store: a writer process that only judges)."""
    from mitmproxy.addons.save import Save

    rec, ann = Recorder(), Annotator()
    rec.subscribe(ann.observe, verdicts=ann.annotate_flows)
    loop = asyncio.new_event_loop()
    try:
        with taddons.context(rec, ann, Save()) as tctx:
            db = str(tmp_path / "live.sqlite") if judge == "writer" else ""
            streamed = str(tmp_path / "live.flows") if judge == "proxy" else ""
            tctx.configure(rec, etagwatch_db=db, save_stream_file=streamed)
            assert rec.judged_in_writer is (judge != "proxy")
            assert (rec.store_path is not None) is (judge == "writer")
            loop.run_until_complete(_running(rec))
            yield Live(tctx, rec, ann, loop)
            rec.done()
    finally:
        loop.close()


@pytest.fixture(params=["proxy", "writer", "judge-only"])
def live(request, tmp_path):
    """Judged on the event loop, in the store's writer process, or in a writer process that
    stores nothing."""
    with wired(request.param, tmp_path) as wiring:
        yield wiring


def test_304_for_a_tag_that_does_not_match_is_a_conformance_error(live):
    live.send(flow(resp={"ETag": '"v2"'}))
    bad = flow(status=304, req={"If-None-Match": '"v1"'}, resp={"ETag": '"v2"'})
    live.send(bad)
    assert bad.marked == MARKERS[ERROR]
    assert "304 although If-None-Match" in bad.comment


def test_full_200_for_a_current_copy_is_flagged_as_waste(live):
    f = flow(req={"If-None-Match": '"v1"'}, resp={"ETag": '"v1"'})
    live.send(f)
    assert f.marked == MARKERS[WASTE] and "missed 304" in f.comment


def test_correct_revalidation_stays_quiet(live):
    ok = [flow(resp={"ETag": '"v1"'}), flow(status=304, req={"If-None-Match": '"v1"'}, resp={"ETag": '"v1"'})]
    for f in ok:
        live.send(f)
    assert all(f.comment == "" and f.marked == "" for f in ok)


def test_unquoted_etag_and_unconditional_304(live):
    unquoted = flow(resp={"ETag": "abc123"})
    live.send(unquoted)
    assert unquoted.marked == MARKERS[ERROR] and "ETag abc123" in unquoted.comment
    stray = flow(status=304, resp={"ETag": '"x"'})
    live.send(stray)
    assert "without If-None-Match" in stray.comment


def test_write_accepted_with_a_never_issued_if_match(live):
    api = "http://api.test/items/1"
    live.send(flow(url=api, resp={"ETag": '"r1"'}, body=b"{}"))
    lost = flow("PUT", api, 204, req={"If-Match": '"r0-stale"'})
    live.send(lost)
    assert lost.marked == MARKERS[ERROR] and "If-Match is ignored" in lost.comment
    fine = flow("PUT", api, 204, req={"If-Match": '"r1"'})
    live.send(fine)
    assert fine.comment == ""


def test_user_markers_are_never_replaced(live):
    f = flow(status=304, resp={"ETag": '"x"'})
    f.marked = ":star:"
    live.send(f)
    assert f.marked == ":star:" and f.comment


def test_host_counters(live):
    live.send(flow(resp={"ETag": '"v1"', "Last-Modified": "Tue, 14 Nov 2023 22:13:20 GMT"}))
    live.send(flow(status=304, req={"If-None-Match": '"v1"'}, resp={"ETag": '"v1"'}))
    live.send(flow(url="http://other.test/", resp={}))
    counts = live.counters()
    assert counts["cdn.test"]["etag"] == 2
    assert counts["cdn.test"]["last_modified"] == 1
    assert counts["cdn.test"]["conditional"] == counts["cdn.test"]["if_none_match"] == 1
    assert counts["cdn.test"]["not_modified"] == 1
    assert counts["other.test"]["exchanges"] == 1 and "etag" not in counts["other.test"]


def test_annotations_can_be_switched_off(live):
    live.tctx.options.etagwatch_annotate = False
    f = flow(status=304, resp={"ETag": '"x"'})
    live.send(f)
    assert f.comment == "" and not live.counters()


def _by_etag_count(exchanges):
    """A stand-in resource detector for the plumbing tests: calls a resource an identifier
    once it carried two distinct ETags."""
    out = {}
    for ex in exchanges:
        tags = {e.etag for e in exchanges if e.url == ex.url and e.etag}
        if len(tags) >= 2:
            out[ex.url] = [Verdict(IDENTIFIER, f"{len(tags)} distinct ETags.")]
    return out


def test_detector_verdicts_reach_every_recent_flow_of_the_resource():
    rec, ann = Recorder(), Annotator(detector=_by_etag_count)
    rec.subscribe(ann.observe)
    with taddons.context(rec, ann) as tctx:
        tctx.configure(rec, etagwatch_db="")
        a = flow(resp={"ETag": '"id-A"'}, peer="10.0.0.1")
        rec.response(a)
        assert ann.rerun_now() == {}
        b = flow(resp={"ETag": '"id-B"'}, peer="10.0.0.2")
        rec.response(b)
        ann.rerun_now()
        assert a.marked == b.marked == MARKERS[IDENTIFIER]
        assert "2 distinct ETags." in a.comment
        assert ann.rerun_now() == {}  # nothing new: no re-run


def test_detector_runs_on_the_worker_thread_and_applies_on_the_loop():
    async def scenario() -> http.HTTPFlow:
        rec, ann = Recorder(), Annotator(detector=_by_etag_count)
        rec.subscribe(ann.observe)
        with taddons.context(rec, ann) as tctx:
            tctx.configure(rec, etagwatch_db="")
            ann.running()
            try:
                first = flow(resp={"ETag": '"id-A"'})
                rec.response(first)
                rec.response(flow(resp={"ETag": '"id-B"'}, peer="10.0.0.2"))
                for _ in range(50):
                    await asyncio.sleep(0.1)
                    if first.marked:
                        break
            finally:
                ann.done()
            return first

    first = asyncio.run(scenario())
    assert first.marked == MARKERS[IDENTIFIER]


def test_real_detectors_flag_a_per_client_etag_revalidated_with_304():
    pytest.importorskip("analysis.detectors", reason="engineer C's detectors")
    from addons.live_detectors import resource_detector
    from analysis.detectors import run_all  # noqa: F401

    rec, ann = Recorder(), Annotator(detector=resource_detector)
    rec.subscribe(ann.observe)
    flows = []
    with taddons.context(rec, ann) as tctx:
        tctx.configure(rec, etagwatch_db="")
        for i in range(4):
            tag = f'"u{i}-7f3a9c2e41b8d05f6a7c"'
            peer = f"10.0.0.{i + 1}"
            for f in (
                flow(resp={"ETag": tag}, peer=peer),
                flow(status=304, req={"If-None-Match": tag}, resp={"ETag": tag}, peer=peer),
                flow(status=304, req={"If-None-Match": tag}, resp={"ETag": tag}, peer=peer),
            ):
                rec.response(f)
                flows.append(f)
        results = ann.rerun_now()
    assert URL in results
    assert any(v.severity == IDENTIFIER for v in results[URL])
    assert flows[-1].marked == MARKERS[IDENTIFIER]


def test_one_client_kept_value_gets_an_open_question_without_a_marker():
    """One client revalidating an opaque value: undetermined, said in the comment (what would
    settle it) but not marked, so the flows that matter keep standing out."""
    from addons.live_detectors import resource_detector

    rec, ann = Recorder(), Annotator(detector=resource_detector)
    rec.subscribe(ann.observe)
    tag = '"7f3a9c2e41b8d0"'  # 56 bits: short of a likely identifier, too many to be benign
    flows = [flow(resp={"ETag": tag}, body=b"x" * 20_000),
             flow(status=304, req={"If-None-Match": tag}, resp={"ETag": tag}),
             flow(status=304, req={"If-None-Match": tag}, resp={"ETag": tag})]
    with taddons.context(rec, ann) as tctx:
        tctx.configure(rec, etagwatch_db="")
        for f in flows:
            rec.response(f)
        results = ann.rerun_now()
    assert [v.severity for v in results[URL]] == [OPEN]
    assert "second profile" in flows[-1].comment
    assert not flows[-1].marked


def test_detector_in_its_own_process_annotates_and_leaves_no_process():
    """The entry script's mode: detectors run in a child process, verdicts land on the flows."""
    from addons.live_detectors import resource_detector

    async def scenario() -> tuple[http.HTTPFlow, Annotator]:
        rec, ann = Recorder(), Annotator(detector=resource_detector, own_process=True)
        rec.subscribe(ann.observe)
        with taddons.context(rec, ann) as tctx:
            tctx.configure(rec, etagwatch_db="")
            ann.running()
            try:
                for i in range(3):
                    tag, peer = f'"u{i}-7f3a9c2e41b8d05f6a7c"', f"10.0.0.{i + 1}"
                    rec.response(flow(resp={"ETag": tag}, peer=peer))
                    last = flow(status=304, req={"If-None-Match": tag}, resp={"ETag": tag}, peer=peer)
                    rec.response(last)
                # a re-run may start after the first client's flows and mark the resource a
                # likely identifier (the same marker) before the next one sees all three
                for _ in range(300):
                    await asyncio.sleep(0.1)
                    if "identifies clients" in (last.comment or ""):
                        break
                pool = ann._pool
            finally:
                ann.done()
        assert pool is not None and not pool._processes  # shut down, nothing left running
        return last, ann

    last, ann = asyncio.run(scenario())
    assert last.marked == MARKERS[IDENTIFIER] and "identifies clients" in last.comment
    assert ann.detector_runs >= 1


def test_the_writer_process_judges_unless_flows_are_streamed_to_a_file(tmp_path):
    """Streamed flows are written in the same hook, so their verdicts must be found at once."""
    from mitmproxy.addons.save import Save

    rec, ann = Recorder(), Annotator()
    rec.subscribe(ann.observe, verdicts=ann.annotate_flows)
    with taddons.context(rec, ann, Save()) as tctx:
        tctx.configure(rec, etagwatch_db=str(tmp_path / "j.sqlite"))
        assert rec.judged_in_writer
        tctx.configure(rec, save_stream_file=str(tmp_path / "out.flows"))
        assert not rec.judged_in_writer
        f = flow(status=304, resp={"ETag": '"x"'})
        rec.response(f)  # judged here, at once: no flush, no loop
        assert "without If-None-Match" in f.comment
        tctx.configure(rec, save_stream_file="")
        assert rec.judged_in_writer
        rec.done()


def test_real_detectors_in_the_writer_process_flag_a_per_client_etag(tmp_path):
    """The writer process re-runs the real detectors on its own records; the verdict reaches
    every recent flow of the resource."""
    with wired("writer", tmp_path) as live:
        flows = real_detector_flows(live)
    assert flows[-1].marked == MARKERS[IDENTIFIER] and "identifies clients" in flows[-1].comment
    assert sum(f.marked == MARKERS[IDENTIFIER] for f in flows) >= 6  # the resource's recent flows


def real_detector_flows(live: Live) -> list[http.HTTPFlow]:
    """Four clients, each with its own ETag for one resource, each revalidated with a 304;
    waits up to 30 s for the writer process's detector verdict."""
    flows = []
    for i in range(4):
        tag, peer = f'"u{i}-7f3a9c2e41b8d05f6a7c"', f"10.0.0.{i + 1}"
        flows.append(live.send(flow(resp={"ETag": tag}, peer=peer)))
        flows.append(live.send(flow(status=304, req={"If-None-Match": tag}, resp={"ETag": tag}, peer=peer)))
    for _ in range(300):  # the first run imports pandas in the child
        live.loop.run_until_complete(asyncio.sleep(0.1))
        if flows[-1].marked:
            break
    return flows


@pytest.mark.parametrize("judge", ["proxy", "writer"])
def test_nothing_judges_while_annotations_are_off(judge, tmp_path):
    """Off means off: no light record, no judge call, no verdicts from the writer process."""
    from mitmproxy.addons.save import Save

    rec, ann, calls = Recorder(), Annotator(), []
    rec.subscribe(lambda f, ex: calls.append(f), verdicts=ann.annotate_flows)
    with taddons.context(rec, ann, Save()) as tctx:
        if judge == "proxy":
            tctx.configure(rec, etagwatch_db="", save_stream_file=str(tmp_path / "off.flows"))
        else:
            tctx.configure(rec, etagwatch_db=str(tmp_path / "off.sqlite"))
        tctx.options.etagwatch_annotate = False
        f = flow(status=304, resp={"ETag": '"x"'})
        rec.response(f)
        assert calls == [] and not rec.judged_in_writer and rec._config.judge is False
        tctx.options.etagwatch_annotate = True
        rec.response(flow(status=304, resp={"ETag": '"y"'}))
        assert len(calls) == (1 if judge == "proxy" else 0) and rec.judged_in_writer is (judge == "writer")
        rec.done()


def test_redacted_validators_are_judged_as_sent(live):
    """Redaction keeps validators out of the store; the checks still compare them as sent, so a
    correct 304 is not accused and a missed 304 is still seen."""
    live.tctx.options.etagwatch_redact_validators = True
    live.send(flow(resp={"ETag": '"v1"'}))
    revalidated = live.send(flow(status=304, req={"If-None-Match": '"v1"'}, resp={"ETag": '"v1"'}))
    missed = live.send(flow(req={"If-None-Match": '"v1"'}, resp={"ETag": '"v1"'}))
    assert revalidated.comment == "" and revalidated.marked == ""
    assert "missed 304" in missed.comment and '"v1"' in missed.comment


# --- one current verdict per flow, revised in place (issue 15, live annotations)
def _proxy_judged(detector) -> tuple[Recorder, Annotator]:
    rec, ann = Recorder(), Annotator(detector=detector)
    rec.subscribe(ann.observe)
    return rec, ann


def test_a_revised_verdict_replaces_the_sentence_and_keeps_the_users_comment():
    """Re-runs whose counts moved used to append near-duplicates ('2 ... 3 ...')."""
    rec, ann = _proxy_judged(_by_etag_count)
    flows = [flow(resp={"ETag": f'"id-{i}"'}, peer=f"10.0.0.{i}") for i in range(4)]
    with taddons.context(rec, ann) as tctx:
        tctx.configure(rec, etagwatch_db="")
        rec.response(flows[0])
        flows[0].comment = "seen by me"  # a user's note stays, before ours
        for f in flows[1:3]:
            rec.response(f)
        ann.rerun_now()
        assert flows[2].comment == "3 distinct ETags."
        rec.response(flows[3])
        ann.rerun_now()
    assert [f.comment for f in flows] == ["seen by me 4 distinct ETags."] + ["4 distinct ETags."] * 3
    assert all(f.marked == MARKERS[IDENTIFIER] for f in flows)


def test_a_flow_after_the_verdict_gets_it_at_once():
    """A steady revisit brings no new value or client; it still shows the resource's verdict
    (before, the last flows of a burst stayed blank however long the traffic went on)."""
    rec, ann = _proxy_judged(_by_etag_count)
    with taddons.context(rec, ann) as tctx:
        tctx.configure(rec, etagwatch_db="")
        rec.response(flow(resp={"ETag": '"id-A"'}))
        rec.response(flow(resp={"ETag": '"id-B"'}, peer="10.0.0.2"))
        ann.rerun_now()
        later = flow(status=304, req={"If-None-Match": '"id-A"'}, resp={"ETag": '"id-A"'})
        rec.response(later)  # no re-run in between
    assert later.comment == "2 distinct ETags." and later.marked == MARKERS[IDENTIFIER]


TAG = '"u0-7f3a9c2e41b8d05f6a7c"'  # high entropy, no known shape


def _clients(send, *peers: str) -> list[http.HTTPFlow]:
    """Each client fetches the pixel and revalidates it with a 304, all with the same ETag
    (one client alone: a likely identifier; more: a shared value, stable)."""
    return [send(f) for peer in peers for f in (
        flow(resp={"ETag": TAG}, peer=peer), flow(status=304, req={"If-None-Match": TAG}, resp={"ETag": TAG}, peer=peer))]


def test_a_withdrawn_verdict_leaves_comment_and_marker():
    """'ETag may identify this client' on the first client's flows goes when more clients
    got the same value: what etagwatch analyze says of the same records (stable)."""
    from addons.live_detectors import resource_detector

    rec, ann = _proxy_judged(resource_detector)
    with taddons.context(rec, ann) as tctx:
        tctx.configure(rec, etagwatch_db="")

        def send(f: http.HTTPFlow) -> http.HTTPFlow:
            rec.response(f)
            return f

        flows = _clients(send, "10.0.0.1")
        ann.rerun_now()
        assert all("may identify this client" in f.comment and f.marked == MARKERS[IDENTIFIER] for f in flows)
        flows += _clients(send, "10.0.0.2", "10.0.0.3")
        ann.rerun_now()
    assert [(f.comment, f.marked) for f in flows] == [("", "")] * 6


def test_the_writer_process_withdraws_a_verdict_within_the_bound(tmp_path):
    from addons.live_judge import VERDICT_DELAY

    def until(done, seconds: float) -> float:
        started = time.monotonic()
        while not done() and time.monotonic() - started < seconds:
            live.loop.run_until_complete(asyncio.sleep(0.02))
        return time.monotonic() - started

    with wired("writer", tmp_path) as live:
        flows = _clients(live.send, "10.0.0.1")
        until(lambda: all(f.marked for f in flows), 30)  # the first run waits for the child's pandas
        assert all("may identify this client" in f.comment and f.marked == MARKERS[IDENTIFIER] for f in flows)
        flows += _clients(live.send, "10.0.0.2", "10.0.0.3")
        delay = until(lambda: all(f.comment == "" and f.marked == "" for f in flows), VERDICT_DELAY + 5)
    assert [(f.comment, f.marked) for f in flows] == [("", "")] * 6
    assert delay <= VERDICT_DELAY


def test_every_flow_of_a_burst_is_annotated_within_the_bound():
    """The re-run thread, not the next flow, brings the verdict: a burst's last flows have it
    within VERDICT_DELAY with no traffic after them."""
    from addons.live_judge import VERDICT_DELAY

    async def scenario() -> tuple[list[http.HTTPFlow], float]:
        rec, ann = _proxy_judged(_by_etag_count)
        with taddons.context(rec, ann) as tctx:
            tctx.configure(rec, etagwatch_db="")
            ann.running()
            try:
                flows = []
                for i in range(30):  # a new ETag every 50 ms: several re-runs in the burst
                    flows.append(flow(resp={"ETag": f'"id-{i % 12}"'}, peer=f"10.0.0.{i % 12}"))
                    rec.response(flows[-1])
                    await asyncio.sleep(0.05)
                last = time.monotonic()
                while time.monotonic() - last < VERDICT_DELAY + 5:
                    if all(f.comment == "12 distinct ETags." for f in flows):
                        break
                    await asyncio.sleep(0.02)
                return flows, time.monotonic() - last
            finally:
                ann.done()

    flows, delay = asyncio.run(scenario())
    assert [f.comment for f in flows] == ["12 distinct ETags."] * 30
    assert delay <= VERDICT_DELAY


def _by_exchange_count(exchanges):
    """A stand-in detector whose verdict counts exchanges, as real verdicts weigh 304s."""
    counts: dict[str, int] = {}
    for ex in exchanges:
        counts[ex.url] = counts.get(ex.url, 0) + 1
    return {url: [Verdict(WASTE, f"{n} exchanges.")] for url, n in counts.items()}


def test_steady_revisits_are_judged_by_the_sweep(monkeypatch):
    """Revisits that bring no new value or client re-run the detectors only at the 2nd, 4th,
    8th and 16th exchange, and then at the next sweep: the count ends up right everywhere."""
    from addons import live_judge

    monkeypatch.setattr(live_judge, "SWEEP_INTERVAL", 0.5)

    async def scenario() -> list[http.HTTPFlow]:
        rec, ann = _proxy_judged(_by_exchange_count)
        with taddons.context(rec, ann) as tctx:
            tctx.configure(rec, etagwatch_db="")
            ann.running()
            try:
                async def until(comment: str) -> None:
                    for _ in range(100):
                        if all(f.comment == comment for f in flows):
                            return
                        await asyncio.sleep(0.05)

                flows = [flow(resp={"ETag": '"v1"'})]
                rec.response(flows[0])
                for i in range(19):
                    if i == 15:  # the 16th exchange was the last to bring evidence
                        await until("16 exchanges.")
                    flows.append(flow(status=304, req={"If-None-Match": '"v1"'}, resp={"ETag": '"v1"'}))
                    rec.response(flows[-1])
                assert flows[-1].comment == "16 exchanges."  # the current verdict, at once
                await until("20 exchanges.")
                return flows
            finally:
                ann.done()

    flows = asyncio.run(scenario())
    assert [f.comment for f in flows] == ["20 exchanges."] * 20
