"""``python -m invprior``: the same command line as ``invprior``."""

from .cli import main

main()
