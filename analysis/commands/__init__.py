"""One module per `etagwatch` sub-command; each exposes ``add_parser(subparsers)``,
which adds its parser and sets ``run=<function(args) -> exit status>`` as a default."""

#: Sub-commands in the order `etagwatch --help` lists them.
COMMANDS: tuple[str, ...] = ("analyze", "ingest", "export", "report", "probe", "crawl", "lab")
