"""The exceptions raised while getting data: bad or missing data, and a load stopped by its caller."""


class DataError(ValueError):
    """Bad, missing or over-limit data; the message names the file and says what to do."""


class LoadStopped(Exception):
    """The caller's stop event was set while the dataset was loading (waiting for it, or downloading)."""
