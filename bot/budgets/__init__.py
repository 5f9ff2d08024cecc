"""Monthly budgets: limits per workspace, channel and member, checked before each answer."""
