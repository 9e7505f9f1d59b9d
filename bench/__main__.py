"""`python -m bench`: run every workload and print the table."""

from bench.run import main

raise SystemExit(main())
