"""Several engines on PostgreSQL: membership and leases, placement, routing, the others' runs."""
