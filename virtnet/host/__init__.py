"""Everything that touches a host: always inside one named network namespace (None = root)."""
