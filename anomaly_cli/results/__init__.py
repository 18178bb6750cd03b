"""The results collection: document shape, repository (writes, indexes, duplicates), lookups."""
