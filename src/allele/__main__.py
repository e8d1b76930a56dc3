"""``python -m allele`` runs the command line."""

from allele.cli import main

main()
