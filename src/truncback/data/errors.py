"""Errors raised by the data layer; each message names the file or value at fault."""


class DataError(Exception):
    """Base class: anything that stops a dataset from being obtained, verified or parsed."""


class UnknownNameError(DataError, KeyError):
    """A dataset, archive or scale name that the registry does not know."""

    def __str__(self) -> str:
        return self.args[0]


class ChecksumError(DataError):
    """A file whose bytes match none of the digests recorded for it."""


class DownloadError(DataError):
    """Every URL of an archive failed."""


class MissingFileError(DataError, FileNotFoundError):
    """An expected file (in data_dir, or a prepared array file) is absent."""


class FormatError(DataError):
    """A file that is not in the format its parser expects."""
