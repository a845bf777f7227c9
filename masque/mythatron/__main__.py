"""`python -m masque.mythatron`: the `mythatron` console script."""

from masque.cli.mythatron import main

main()
