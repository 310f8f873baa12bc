"""`python -m marketsim_opt`: the command line."""

from .cli import main

raise SystemExit(main())
