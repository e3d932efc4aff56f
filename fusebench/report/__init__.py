"""Everything a person reads: terminal tables and files written per run."""
