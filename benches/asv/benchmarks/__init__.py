"""asv suite: system0 and its peers over commit history (run from benches/asv: `asv run`)."""
