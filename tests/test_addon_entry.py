"""The entry script as mitmproxy loads it (``-s addons/etagwatch.py``): its addons get the flows,
and looking up a hook on the script's module never misses."""

from __future__ import annotations

import logging
from pathlib import Path

import mitmproxy.tools.dump  # noqa: F401  (defines every hook, as in a running mitmdump)
from mitmproxy import hooks
from mitmproxy.addons import script
from mitmproxy.proxy.layers.http import HttpResponseHook
from mitmproxy.test import taddons, tflow

from analysis.lab.mitm import ADDON
from analysis.store import load_exchanges


def loaded(tctx: taddons.context):
    """The entry module, loaded and chained as mitmdump's script loader does."""
    module = script.load_script(str(ADDON))
    assert module is not None
    tctx.master.addons.add(module)
    return module


def test_every_hook_name_is_found_on_the_module_and_unimplemented_ones_are_none(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default store lands here
    with taddons.context() as tctx:
        module = loaded(tctx)
        for name in set(hooks.all_hooks) - {"add_log"}:
            value = getattr(module, name)  # a miss would raise AttributeError
            assert value is None, f"{name} is bound to {value!r} on the entry module"
        assert not hasattr(module, "add_log")  # deprecated: mitmproxy warns about addons that have it
        # the module's own names are untouched
        assert [type(a).__name__ for a in module.addons] == ["PreconditionReplay", "Recorder", "Annotator", "Findings"]


def test_loading_the_entry_script_draws_no_deprecation_warning(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.chdir(tmp_path)
    with taddons.context() as tctx, caplog.at_level(logging.WARNING):
        loaded(tctx)
    assert not [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]


def test_the_entry_scripts_addons_still_receive_response_events(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "entry.sqlite"
    with taddons.context() as tctx:
        module = loaded(tctx)
        tctx.options.update(etagwatch_db=str(db))
        hooked = [type(addon).__name__ for addon, _ in tctx.master.addons._iter_hooks(module, HttpResponseHook(tflow.tflow()))]
        assert hooked == ["PreconditionReplay", "Recorder"]
        flow = tflow.tflow(resp=True)
        flow.response.headers["ETag"] = '"v1"'
        tctx.master.addons.trigger(HttpResponseHook(flow))
        module.recorder.flush()
        stored = load_exchanges(db)
        tctx.master.addons.trigger(hooks.DoneHook())
    assert stored["flow_id"].tolist() == [flow.id]
    assert stored["etag"].tolist() == ['"v1"']
