"""The escalation logic (pure `evolve`/`decide`) and the Temporal workflow that runs it."""
