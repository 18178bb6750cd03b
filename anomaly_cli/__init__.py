"""anomaly: screen children's oral-reading recordings for problems at state scale.

Layers (data flows one way, nothing imports upward):
``cli`` -> ``ops`` / ``discovery`` / ``worker`` -> ``model`` / ``audio`` -> ``adapters``,
with ``config``, ``errors``, ``log`` and ``contract`` shared by all of them.
"""

__version__ = "0.1.0"
