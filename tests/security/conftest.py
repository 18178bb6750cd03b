"""Security tests reuse the corpus kit: the real model and the hostile server."""

from tests.corpus.conftest import engine_model, hostile  # noqa: F401 - fixtures re-exported
