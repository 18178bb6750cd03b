"""A deterministic generator of reading-like speech and of every anomaly kind.

No real recordings of children reading can be had here, so training, tests, benchmarks and the
demo use this generator. Everything is driven by a seeded ``numpy.random.Generator``: the same
seed gives the same samples and the same files. It lives apart from ``audio/`` (the production
decoder) because it runs espeak-ng as a subprocess, reads alsa-utils' files and needs
``scipy.signal``, none of which a screening process should load.

One module per concern:
- :mod:`~anomaly_cli.synth.signals`: levels (p95 frame RMS in dBFS) and mixing at an SNR, noises,
  hum, tones, music, chimes, handling bumps, a phone microphone's colouring.
- :mod:`~anomaly_cli.synth.formant`: the built-in voice (a formant synthesiser) and babble.
- :mod:`~anomaly_cli.synth.sources`: the other speech sources (espeak-ng, alsa-utils' words) and
  :func:`speech`, which picks one.
- :mod:`~anomaly_cli.synth.anomalies`: labels and variants, one recording's samples
  (:func:`make_clip`) and file bytes (:func:`make_item`).
- :mod:`~anomaly_cli.synth.dataset`: a labelled folder with ``manifest.csv`` (:func:`make_dataset`).

The names below are the generator's public interface; callers import the package.
"""

from anomaly_cli.synth.anomalies import LABELS, VARIANTS, Clip, Item, make_clip, make_item
from anomaly_cli.synth.dataset import DEFAULT_FORMATS, WEIGHTS, make_dataset
from anomaly_cli.synth.formant import babble, formant_speech
from anomaly_cli.synth.signals import (
    SR,
    chime,
    coloured_noise,
    frame_level_db,
    hum,
    mix_at_snr,
    music,
    set_level,
    tone,
)
from anomaly_cli.synth.sources import (
    ALSA_DIR,
    MARATHI_LINES,
    alsa_files,
    alsa_speech,
    espeak_available,
    espeak_speech,
    speech,
)

__all__ = [
    "ALSA_DIR",
    "DEFAULT_FORMATS",
    "LABELS",
    "MARATHI_LINES",
    "SR",
    "VARIANTS",
    "WEIGHTS",
    "Clip",
    "Item",
    "alsa_files",
    "alsa_speech",
    "babble",
    "chime",
    "coloured_noise",
    "espeak_available",
    "espeak_speech",
    "formant_speech",
    "frame_level_db",
    "hum",
    "make_clip",
    "make_dataset",
    "make_item",
    "mix_at_snr",
    "music",
    "set_level",
    "speech",
    "tone",
]
