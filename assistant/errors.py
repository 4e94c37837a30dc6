"""The project's own exception types.

Everything the engine raises on purpose derives from ``ConfidantError`` and carries a message
written for the person using the app: what happened and what to do. The edges (web UI, CLI)
turn these into user messages; anything else is a bug and is reported as such.
"""


class ConfidantError(Exception):
    """Base class: a failure the user can understand and act on."""


class ConfigError(ConfidantError):
    """A setting has a wrong value; the message names the setting."""


class InputError(ConfidantError):
    """The user's input (a message, a name, a file) cannot be accepted as it is."""


class NotFoundError(ConfidantError):
    """A profile, conversation or exchange that was asked for does not exist."""


class ModelError(ConfidantError):
    """The local model could not be loaded or failed while generating."""


class StoreError(ConfidantError):
    """The database could not be opened or written."""


class CloudError(ConfidantError):
    """The cloud model could not be reached or failed while answering; answer on this device."""


class CloudUnavailable(CloudError):
    """The cloud is paused after repeated failures (circuit breaker open); nothing was sent."""


class PrivacyError(ConfidantError):
    """Personal data could not be reliably removed from a message; it must not leave the device."""


class TrainingError(ConfidantError):
    """The local model cannot be taught as asked (too little data, say); the message says what is needed."""


class TrainingCancelled(TrainingError):
    """Training was stopped before it finished; nothing was written."""


class AdapterError(ConfidantError):
    """A tuned adapter cannot be used (made for another base model, or damaged); the base model answers."""
