"""Running work: commands through the supervisor, callables and HTTP calls, adoption, output checks."""
