"""Events: one row per state change, written in the transaction of that change."""
