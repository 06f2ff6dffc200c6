"""The one error type users see: a message that names the problem, never a traceback."""


class GaninvError(Exception):
    """Bad input or a state we refuse to continue from; the CLI prints the message and exits non-zero."""


class DataError(GaninvError):
    """A dataset spec, path or image that cannot be used."""


class RunDirError(GaninvError):
    """A run directory that is missing, truncated, of another method or of a newer format."""


class TrainingDiverged(GaninvError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""
