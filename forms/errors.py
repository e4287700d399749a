"""Exceptions raised by the forms package.

Validating a submission never raises: problems with submitted data are returned as
`FieldError` values (see `forms.result`). The exceptions below are for programming and
configuration faults: a schema file that does not decode, a schema that fails the
design-time check, a keyring that is misconfigured, a ciphertext that cannot be opened.

    FormsError                      base of the package; retrying never helps
    ├── SchemaError                 a form schema is unusable (carries the problems found)
    │   └── SchemaDecodeError       the stored JSON does not match the form-schema format
    └── SensitiveDataError          field encryption failed
        ├── KeyringError            the keyring itself is invalid (wrong key length, no current key)
        ├── UnknownKeyError         a ciphertext names a key id that the keyring does not hold
        └── DecryptionError         authentication failed: wrong key, or the value was tampered with
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forms.check import SchemaProblem


class FormsError(Exception):
    """Base of every error raised by `forms`. None of them is transient: retrying never helps."""

    retryable = False


class SchemaError(FormsError):
    """A form schema cannot be used; `problems` lists what is wrong, each with its path."""

    def __init__(self, message: str, problems: list[SchemaProblem] | None = None) -> None:
        super().__init__(message)
        self.problems: list[SchemaProblem] = list(problems or [])


class SchemaDecodeError(SchemaError):
    """The JSON of a schema is malformed or does not match the form-schema format."""


class SensitiveDataError(FormsError):
    """Encrypting or decrypting a sensitive field value failed."""


class KeyringError(SensitiveDataError):
    """The keyring is misconfigured: a key is not 32 bytes, or the current key id is missing."""


class UnknownKeyError(SensitiveDataError):
    """A stored ciphertext was sealed with a key id that is not in the keyring."""


class DecryptionError(SensitiveDataError):
    """AES-GCM authentication failed: the key is wrong or the stored value was altered."""
