"""`python -m assay.collector` is `assay`."""

from assay.collector.cli import main

main()
