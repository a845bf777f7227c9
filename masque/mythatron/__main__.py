"""`python -m masque.mythatron`: the `mythatron` console script."""

from masque.mythatron.cli import main

main()
