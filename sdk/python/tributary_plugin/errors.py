"""Errors the host understands: the WIT `plugin-error` variant as Python exceptions.

Raise one of these from a connector's ``next_page`` or a channel's ``handle_incoming`` /
``send_message`` and the host sees the matching case:

==========================  =================================  ==========================
exception                   WIT case                           when
==========================  =================================  ==========================
``PermissionDenied``        ``denied(permission)``             the host refused a call
``LimitExceeded``           ``limit(what)``                    a sandbox limit was reached
``ConfigError``             ``config{field, message}``         a config field is missing or wrong
``HttpError``               ``http{status, message}``          the remote service answered an error
``TransientError``          ``transient(message)``             it may pass: a timeout, a refused connection
``PluginError``             ``other(message)``                 anything else
==========================  =================================  ==========================

An error a host call answers (``secret``, ``http-fetch``, ``emit-event`` …) arrives as the
matching exception, so a refusal caught and raised again keeps its ``denied`` case and the
permission text the host gave.
"""

from componentize_py_types import Err
from wit_world.imports import types as _wit


class PluginError(Exception):
    """A failure the host records as the sync's or the call's error.

    Raised as it is, it is the ``other`` case; its subclasses are the other cases.
    """

    #: The WIT case this exception stands for.
    kind = "other"

    def __init__(self, message: str):
        super().__init__(message)
        #: What went wrong, as the host shows it.
        self.message = message

    def to_wit(self):
        """This error as the generated binding's ``plugin-error`` value."""
        return _wit.PluginError_Other(self.message)


class PermissionDenied(PluginError):
    """The manifest does not grant a call; ``message`` names the permission."""

    kind = "denied"

    def to_wit(self):
        """This error as ``plugin-error.denied``, with the permission text unchanged."""
        return _wit.PluginError_Denied(self.message)


class LimitExceeded(PluginError):
    """A limit of the sandbox was reached; ``message`` names it."""

    kind = "limit"

    def to_wit(self):
        """This error as ``plugin-error.limit``."""
        return _wit.PluginError_Limit(self.message)


class ConfigError(PluginError):
    """The configuration field ``field`` is missing or wrong; ``problem`` says how."""

    kind = "config"

    def __init__(self, field: str, problem: str):
        super().__init__(f"config field `{field}` {problem}")
        #: The field's path, such as ``baseUrl`` or ``auth.user``.
        self.field = field
        #: What is wrong with it, such as ``is required``.
        self.problem = problem

    def to_wit(self):
        """This error as ``plugin-error.config``."""
        return _wit.PluginError_Config(_wit.ConfigProblem(field=self.field, message=self.problem))


class HttpError(PluginError):
    """The remote service answered with the error status ``status``.

    ``message`` says what was asked (method, host, path) and starts the answer's body;
    ``retry_after_ms`` is the wait the answer asked for (``Retry-After``), when it gave one.
    """

    kind = "http"

    def __init__(self, status: int, message: str, retry_after_ms: "int | None" = None):
        super().__init__(message)
        #: The HTTP status.
        self.status = status
        #: The wait the answer asked for in milliseconds, or None.
        self.retry_after_ms = retry_after_ms

    def to_wit(self):
        """This error as ``plugin-error.http``."""
        return _wit.PluginError_Http(_wit.HttpProblem(status=self.status, message=self.message))


class TransientError(PluginError):
    """A condition that may pass (a timeout, a refused connection, a rate limit)."""

    kind = "transient"

    def to_wit(self):
        """This error as ``plugin-error.transient``."""
        return _wit.PluginError_Transient(self.message)


def config_error(field: str, problem: str) -> ConfigError:
    """A ``ConfigError`` for ``field``: ``raise config_error("baseUrl", "must be an https URL")``."""
    return ConfigError(field, problem)


def from_wit(error) -> PluginError:
    """The exception for a ``plugin-error`` value a host call answered."""
    if isinstance(error, _wit.PluginError_Denied):
        return PermissionDenied(error.value)
    if isinstance(error, _wit.PluginError_Limit):
        return LimitExceeded(error.value)
    if isinstance(error, _wit.PluginError_Config):
        return ConfigError(error.value.field, error.value.message)
    if isinstance(error, _wit.PluginError_Http):
        return HttpError(error.value.status, error.value.message)
    if isinstance(error, _wit.PluginError_Transient):
        return TransientError(error.value)
    if isinstance(error, _wit.PluginError_Other):
        return PluginError(error.value)
    return PluginError(f"the host answered an error the SDK does not know: {error!r}")


def call_host(function, *args):
    """Calls the generated host binding ``function``; its ``Err`` becomes a ``PluginError``."""
    try:
        return function(*args)
    except Err as err:
        raise from_wit(err.value) from None


def describe_exception(error: BaseException) -> str:
    """A bug's exception as one line: its type, its text and where in the plugin it was raised
    (the innermost frame of the plugin's own code; the SDK's and the import system's are skipped).

    The frames are read without their source lines: a component has no files to read them from.
    """
    text = f"{type(error).__name__}: {error}"
    tb = error.__traceback__
    innermost = plugin_frame = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        innermost = tb
        if not filename.startswith("<") and "/tributary_plugin/" not in filename:
            plugin_frame = tb
        tb = tb.tb_next
    where = plugin_frame or innermost
    if where is not None:
        code = where.tb_frame.f_code
        text += f" (at {code.co_filename.rsplit('/', 1)[-1]}:{where.tb_lineno} in {code.co_name})"
    return text


def to_wit_error(error: BaseException):
    """Any exception as a ``plugin-error``: a ``PluginError`` as its case, a bug as ``other``
    saying what was raised where (a bug would otherwise trap, and the host would show only
    that the plugin trapped)."""
    if isinstance(error, PluginError):
        return error.to_wit()
    if isinstance(error, Err):
        return from_wit(error.value).to_wit()
    return _wit.PluginError_Other(f"the plugin failed: {describe_exception(error)}")


def raise_as_wit(error: BaseException):
    """Raises ``error`` as the ``Err`` the generated export glue hands the host."""
    raise Err(to_wit_error(error)) from None
