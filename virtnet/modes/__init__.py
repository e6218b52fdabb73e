"""Connection types: what each is (``traits``) and, per type, its policy."""
