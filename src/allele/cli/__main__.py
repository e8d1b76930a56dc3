"""``python -m allele.cli`` runs the command line."""

from allele.cli import main

main()
