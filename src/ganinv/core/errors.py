"""The one error type users see: a message that names the problem, never a traceback."""
import errno
import os


class GaninvError(Exception):
    """Bad input or a state we refuse to continue from; the CLI prints the message and exits non-zero."""


class DataError(GaninvError):
    """A dataset spec, path or image that cannot be used."""


class RunDirError(GaninvError):
    """A run directory that is missing, truncated, of another method or of a newer format."""


class TrainingDiverged(GaninvError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error: the path(s) and the reason in words ("No space left on device")."""
    reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else type(exc).__name__)
    hint = {errno.ENOSPC: "; free some space and run the command again (runs continue with --resume)",
            errno.EDQUOT: "; free some space and run the command again (runs continue with --resume)",
            errno.EROFS: "; choose a writable folder", errno.EACCES: "; check the permissions",
            errno.ELOOP: " (a symbolic link that points back to itself)"}.get(exc.errno, "")
    paths = " → ".join(os.fsdecode(p) for p in (exc.filename, exc.filename2) if p is not None)
    return f"{paths}: {reason}{hint}" if paths else f"{reason}{hint}"
