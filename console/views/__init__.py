"""What people and programs are shown: rows as the JSON contract, the screens' rows, the plan."""
