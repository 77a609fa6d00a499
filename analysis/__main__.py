"""`python -m analysis` runs the `etagwatch` command line."""

from analysis.cli import main

raise SystemExit(main())
