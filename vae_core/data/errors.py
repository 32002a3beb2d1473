"""The one exception raised for data a student supplied or the server could not find."""


class DataError(ValueError):
    """Bad, missing or over-limit data; the message names the file and says what to do."""
