"""Performance benchmark of export-preflight (``make bench``; see docs/performance.md)."""
