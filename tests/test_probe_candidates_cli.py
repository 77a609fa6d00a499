"""`etagwatch probe --candidates`: usage errors are one line on stderr, exit status 2, and
nothing is sent or created."""

from __future__ import annotations

import pytest

from analysis.cli import main


@pytest.mark.parametrize("argv, message", [
    (["probe"], "give the URL to probe, or --candidates STORE"),
    (["probe", "http://127.0.0.1:1/x", "--candidates", "s.sqlite"], "not both"),
    (["probe", "--candidates", "/nonexistent/s.sqlite"], "/nonexistent/s.sqlite: no such store"),
    (["probe", "--candidates", "s.sqlite", "--rate", "0"], "--rate must be a positive"),
    (["probe", "--candidates", "s.sqlite", "--concurrency", "0"], "--concurrency must be"),
    (["probe", "--candidates", "s.sqlite", "--db", "x.sqlite"], "--db: with --candidates"),
    (["probe", "--candidates", "/"], "/: a folder; --candidates needs a store file"),
    (["probe", "--candidates", "s.sqlite", "--cacert", "/nonexistent.pem"],
     "--cacert /nonexistent.pem: not a readable PEM certificate"),
])
def test_usage_errors_are_one_line(argv: list[str], message: str, capsys, tmp_path,
                                   monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert not list(tmp_path.iterdir())  # no store was created
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
