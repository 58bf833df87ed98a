"""``python -m textcnn``: the command line (what ``torchrun -m textcnn train`` runs)."""

from .cli import main

main()
