"""The instance's context: configuration, secrets, logs, time, the instance's store, events.

Every call goes through the host, which checks it against the permissions accepted for the
instance; a refusal raises ``PermissionDenied`` naming the permission.
"""

import json as _json
from datetime import datetime, timezone

from wit_world.imports import host as _host

from .errors import ConfigError, PluginError, TransientError, call_host

def config() -> dict:
    """The instance's configuration as a dict, without its secret (``writeOnly``) fields.

    Read a secret with ``secret(field)``, or better have the host attach it to a request
    (``request(..., auth=bearer("apiToken"))``) so the plugin never holds it.
    """
    try:
        value = _json.loads(_host.config())
    except ValueError as error:
        raise PluginError(f"the host's config is not JSON: {error}") from None
    return value if isinstance(value, dict) else {}


def secret(field: str) -> str:
    """The value of the secret config field ``field``: an explicit read, which the host logs.

    Raises ``ConfigError`` when it is not set and ``PermissionDenied`` when ``field`` is not a
    ``writeOnly`` property of the plugin's configSchema.
    """
    return call_host(_host.secret, field)


def require_config(settings: dict, key: str):
    """``settings[key]``, or ``ConfigError(key, "is required")`` when it is missing, null or empty."""
    value = settings.get(key)
    if value is None or value == "":
        raise ConfigError(key, "is required")
    return value


def config_string(settings: dict, key: str, default: "str | None" = None) -> str:
    """The text in ``settings[key]`` (or ``default``); ``ConfigError`` naming ``key`` when it is
    missing or not a string."""
    value = settings.get(key)
    if value is None or value == "":
        value = default
    if value is None or value == "":
        raise ConfigError(key, "is required")
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, found {_json.dumps(value)}")
    return value


def config_url(settings: dict, key: str, default: "str | None" = None) -> str:
    """The http(s) URL in ``settings[key]`` (or ``default``) without a trailing slash;
    ``ConfigError`` naming ``key`` when it is missing or not an http or https URL with a host."""
    value = config_string(settings, key, default)
    scheme, separator, rest = value.partition("://")
    if scheme.lower() not in ("http", "https") or not separator:
        raise ConfigError(key, f"must be an http or https URL, found {_json.dumps(value)}")
    if rest == "" or rest[0] in "/?#":
        raise ConfigError(key, f"must name a host, found {_json.dumps(value)}")
    return value.rstrip("/")


def config_int(settings: dict, key: str, default: int, minimum: int, maximum: int) -> int:
    """The whole number in ``settings[key]`` (or ``default``), from ``minimum`` to ``maximum``;
    ``ConfigError`` naming ``key`` otherwise."""
    value = settings.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ConfigError(key, f"must be a whole number from {minimum} to {maximum}, found {_json.dumps(value)}")
    return value


class _Log:
    """Log lines tagged with the plugin and the instance. Lines longer than the instance's
    limit are cut; lines over its rate limit are dropped and counted. ``print`` goes nowhere."""

    def debug(self, message: str) -> None:
        """Logs ``message`` at debug level."""
        _host.log(_host.LogLevel.DEBUG, message)

    def info(self, message: str) -> None:
        """Logs ``message`` at info level."""
        _host.log(_host.LogLevel.INFO, message)

    def warn(self, message: str) -> None:
        """Logs ``message`` at warn level."""
        _host.log(_host.LogLevel.WARN, message)

    def error(self, message: str) -> None:
        """Logs ``message`` at error level."""
        _host.log(_host.LogLevel.ERROR, message)


#: The instance's log: ``log.info("read 100 notes")``.
log = _Log()


def plugin_id() -> str:
    """The plugin's id, such as ``com.example.notes``."""
    return _host.plugin_id()


def instance_id() -> str:
    """The instance's id."""
    return _host.instance_id()


def now_ms() -> int:
    """Milliseconds since the Unix epoch, from the host (a component has no clock of its own:
    ``time.time()`` and ``datetime.now()`` do not work in it)."""
    return _host.now_ms()


def utc_now() -> str:
    """The host's time now, RFC 3339 in UTC with milliseconds: ``2026-01-01T00:00:00.000Z``."""
    return format_time_ms(now_ms())


def format_time_ms(ms: int) -> str:
    """Milliseconds since the epoch as RFC 3339 in UTC with milliseconds."""
    moment = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time_ms(text: str) -> int:
    """Milliseconds since the epoch of the RFC 3339 time ``text`` (``Z`` or an offset);
    ``ValueError`` when it is not one."""
    if not isinstance(text, str):
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    value = text.strip()
    if value.endswith("Z") or value.endswith("z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"an RFC 3339 time needs an offset or Z: {text!r}")
    return round(moment.timestamp() * 1000)


def cancelled() -> bool:
    """Whether the host asked the running call to stop; a long loop should check it."""
    return _host.cancelled()


def sleep_ms(ms: int) -> None:
    """Waits ``ms`` milliseconds, raising ``TransientError`` if the host cancels the call.

    A component has no timer to sleep on: this watches the host's clock, so the wait counts
    against the call's CPU limit (``limits.callCpuMs``, 5 s by default). Keep waits short;
    ``with_retry`` caps them with ``max_wait_ms``.
    """
    until = _host.now_ms() + max(0, int(ms))
    while _host.now_ms() < until:
        if _host.cancelled():
            raise TransientError("the call was cancelled while waiting")


def random_bytes(count: int) -> bytes:
    """``count`` random bytes from the host (at most 1024). Python's ``random`` module is seeded
    when the component is built, so it repeats: use this where it matters."""
    return _host.random_bytes(count)


def kv_get(key: str) -> "bytes | None":
    """The value stored under ``key`` in the instance's own store, or None."""
    return call_host(_host.kv_get, key)


def kv_set(key: str, value: bytes) -> None:
    """Stores ``value`` (at most 64 KiB) under ``key`` (at most 256 bytes)."""
    call_host(_host.kv_set, key, value)


def kv_delete(key: str) -> None:
    """Forgets ``key``."""
    call_host(_host.kv_delete, key)


def emit_event(subject: str, payload) -> None:
    """Publishes ``payload`` (any JSON value) on ``subject``; needs ``event:publish:<subject>``."""
    call_host(_host.emit_event, subject, _json.dumps(payload))


def data_get(entity: str, id: str) -> "dict | None":
    """The entity ``id`` of type ``entity`` (``persons``, ``messages``, …) of the unified model,
    or None; needs ``data:read:<entity>``."""
    text = call_host(_host.data_get, entity, id)
    return None if text is None else _json.loads(text)
