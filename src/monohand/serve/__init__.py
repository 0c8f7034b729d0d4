"""The web page of the main job (``monohand serve``)."""
