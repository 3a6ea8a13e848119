"""Named frozen text embedders that datasets may use (e.g. `mosi-minilm`): texts -> (N, d) float32.

The data layer only names them; the layer that owns a text model registers it
(`modules.text_encoder` registers "minilm"), so loading data never imports a neural encoder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np

from pmrfusion.errors import PMRFusionError

TextEmbedder = Callable[[Sequence[str], "str | os.PathLike | None"], np.ndarray]  # (texts, cache dir)
_EMBEDDERS: dict[str, TextEmbedder] = {}


def register_text_embedder(name: str, embed: TextEmbedder) -> None:
    _EMBEDDERS[name] = embed


def text_embedder(name: str) -> TextEmbedder:
    if name not in _EMBEDDERS:
        raise PMRFusionError(f"no text embedder '{name}' is registered: have {sorted(_EMBEDDERS) or 'none'}")
    return _EMBEDDERS[name]


__all__ = ["TextEmbedder", "register_text_embedder", "text_embedder"]
