"""Exceptions of the step-plugin SDK and its host side.

Each error says whether retrying the same thing can help (`retryable`). The web layer maps
the callback errors to HTTP; the comments give the intended status.

    PluginError                    base of the package
    ├── PluginLoadError            a plugin does not import, or is not a valid step plugin
    ├── DuplicatePluginError       two plugins claim the same name (the first one stays)
    ├── ConfigInvalid              a node's config does not fit the plugin's config type
    ├── PluginUnavailable          no plugin of that name is installed, or it is disabled (retryable:
    │                              installing or fixing it helps)
    ├── StepFailed                 a hook returned `Fail` or raised; `retryable` as the hook said
    ├── EngineLacksPlugin          the engine was not given the plugin (`Environment.plugins`), so a
    │                              decision only the engine can apply cannot be applied (retryable)
    └── CallbackRejected           an external callback is refused
        ├── UnknownCall            no step waits for this call                                404
        ├── BadSignature           the signature does not match the body                      401
        └── BadCallbackBody        the body is not a valid callback                           422
"""

from __future__ import annotations


class PluginError(Exception):
    """Base of every error raised by `plugins`."""

    retryable = False


class PluginLoadError(PluginError):
    """A plugin failed to import, or the object it names is not a valid step plugin."""


class DuplicatePluginError(PluginLoadError):
    """A second plugin claims a name already registered."""


class ConfigInvalid(PluginError):
    """A step's config does not match its plugin's config type; `messages` name the paths."""

    def __init__(self, plugin: str, messages: list[str]) -> None:
        super().__init__(f"{plugin}: " + "; ".join(messages))
        self.plugin = plugin
        self.messages = messages


class PluginUnavailable(PluginError):
    """The step's plugin is not installed, or was disabled because it failed to load."""

    retryable = True


class StepFailed(PluginError):
    """A hook gave up (`Fail`) or raised; `retryable` says whether the actor should try again."""

    def __init__(self, reason: str, *, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


class EngineLacksPlugin(PluginError):
    """The service did not put the plugin into `Environment.plugins`; see `engine_plugins`."""

    retryable = True


class CallbackRejected(PluginError):
    """An external callback was refused; nothing changed."""


class UnknownCall(CallbackRejected):
    """No step waits for this call id (never existed, already answered, or the request ended)."""


class BadSignature(CallbackRejected):
    """The callback's HMAC-SHA256 signature does not match its body."""


class BadCallbackBody(CallbackRejected):
    """The callback body is not JSON of the expected shape."""
