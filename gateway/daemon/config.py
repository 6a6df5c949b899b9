"""The daemon's configuration file (TOML, validated with pydantic; docs/daemon.md).

One file per shop: who we are (``shop``), where the till API listens (``[http]``), where the
journal lives (``[journal]``) and its store-and-forward key (``[vault]``), the online payment
API (``[acquirer]``), the EMV kernel's configuration (``[terminal]``), head office over MQTT
(``[mqtt]``, optional) and one ``[[lanes]]`` table per till. Every error names the field path
(``lanes.1.reader: ...``) and never echoes a secret. See ``gateway/data/example.toml``.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from babel import Locale, UnknownLocaleError
from babel.numbers import UnknownCurrencyError, get_currency_precision, validate_currency
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drivers.errors import ConfigurationError
from drivers.registry import create_device
from gateway.errors import ConfigError

__all__ = [
    "EXAMPLE_CONFIG",
    "AcquirerConfig",
    "ConfigError",
    "DaemonConfig",
    "HttpConfig",
    "JournalConfig",
    "KernelConfig",
    "LaneConfig",
    "MqttConfig",
    "SecurityConfig",
    "TimeoutsConfig",
    "VaultConfig",
    "is_loopback_host",
    "load_config",
    "parse_config",
]

#: The example shipped with the package (``posgw check-config`` accepts it).
EXAMPLE_CONFIG = Path(__file__).resolve().parent.parent / "data" / "example.toml"

_ID = re.compile(r"^[\x21-\x7e]{1,16}$")
#: Languages the status page has a catalogue for (gateway/web/locale; the msgids are English).
PAGE_LANGUAGES = ("en", "fr")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class HttpConfig(_Model):
    """``[http]``: the till API and status page listener (docs/security.md).

    TLS is on unless ``tls = false``, which only a loopback ``host`` may set. Without
    ``cert_file``/``key_file`` the daemon makes a self-signed pair beside the journal
    (``posgw tls fingerprint`` prints what tills pin). ``allowed_hosts``: the names and
    addresses tills and browsers use to reach the gateway (the ``Host`` header); the listener's
    own address and loopback are always allowed. The limits bound what one client can hold.
    """

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    tls: bool = True
    cert_file: Path | None = None
    key_file: Path | None = None
    #: CA whose client certificates tills may present instead of a token (``posgw till add
    #: NAME --cert FILE`` binds one to a till).
    client_ca_file: Path | None = None
    allowed_hosts: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.:\[\]-]{1,253}$")]] = []
    #: Managers log in to see the status page (``false`` only on loopback).
    status_login: bool = True
    #: Largest request body, bytes (aiohttp ``client_max_size``).
    max_body: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024)] = 256 * 1024
    #: Seconds a connection may stay without a request (aiohttp ``keepalive_timeout``, which
    #: runs from the moment the connection is made: the header read time-out too).
    idle_timeout: Annotated[float, Field(gt=0, le=3600)] = 15.0
    #: Seconds a request body may take to arrive.
    body_timeout: Annotated[float, Field(gt=0, le=600)] = 10.0
    max_connections: Annotated[int, Field(ge=1, le=65536)] = 512
    max_connections_per_client: Annotated[int, Field(ge=1, le=65536)] = 64
    #: The status page's locale for everyone (``"fr_FR"``); unset: the browser's
    #: Accept-Language decides (gateway/web/i18n.py).
    locale: str | None = None

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            language = Locale.parse(value.strip().replace("-", "_")).language
        except (ValueError, UnknownLocaleError):
            language = None
        if language not in PAGE_LANGUAGES:
            raise ValueError(
                f"{value!r}: expected a locale in {', '.join(PAGE_LANGUAGES)} (such as fr_FR)"
            )
        return value

    @model_validator(mode="after")
    def _exposure(self) -> HttpConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if not self.tls and (self.cert_file is not None or self.client_ca_file is not None):
            raise ValueError("cert_file, key_file and client_ca_file need tls = true")
        if not is_loopback_host(self.host):
            if not self.tls:
                raise ValueError(
                    f"plain HTTP on {self.host} would send till tokens and manager passwords "
                    "in clear over the shop network: set tls = true (or bind 127.0.0.1)"
                )
            if not self.status_login:
                raise ValueError(
                    f"status_login = false on {self.host} would show the shop to anyone on "
                    "the network: keep manager logins on (or bind 127.0.0.1)"
                )
        return self


class SecurityConfig(_Model):
    """``[security]``: manager logins (docs/security.md)."""

    #: Failed logins (per account, and per client address) within ``login_window`` that lock.
    login_max_failures: Annotated[int, Field(ge=1, le=10)] = 5
    login_window: Annotated[float, Field(gt=0)] = 900.0
    #: Seconds a lock lasts (PCI DSS v4.0 8.3.4: at least 30 minutes).
    login_cooldown: Annotated[float, Field(gt=0)] = 1800.0
    #: A manager session ends after this many idle seconds (PCI DSS v4.0 8.2.8: 15 minutes).
    session_idle: Annotated[float, Field(gt=0)] = 900.0
    session_lifetime: Annotated[float, Field(gt=0)] = 8 * 3600.0


class JournalConfig(_Model):
    """``[journal]``: the SQLite journal file (its directory must exist)."""

    path: Path = Path("/var/lib/posgw/journal.db")
    #: Days an outbox record head office acknowledged is kept (the payment itself stays).
    outbox_retention_days: Annotated[float, Field(gt=0, le=3650)] = 30.0


class VaultConfig(_Model):
    """``[vault]``: the store-and-forward key, from a file or a systemd credential.

    ``previous_key_files``: keys retired by a rotation, kept until the rows they sealed are
    forwarded (new rows are sealed under the current key only).
    """

    key_file: Path | None = None
    credential: str | None = None
    previous_key_files: list[Path] = []

    @model_validator(mode="after")
    def _one_source(self) -> VaultConfig:
        if self.key_file is not None and self.credential is not None:
            raise ValueError("give key_file or credential, not both")
        return self


class AcquirerConfig(_Model):
    """``[acquirer]``: the online payment API (docs/acquirer-api.md)."""

    url: str
    merchant_id: str
    terminal_id: str = "POSGW001"
    connect_timeout: Annotated[float, Field(gt=0)] = 3.0
    total_timeout: Annotated[float, Field(gt=0)] = 15.0
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 3
    retry_interval: Annotated[float, Field(gt=0)] = 30.0
    keepalive: Annotated[float, Field(ge=0, le=300)] = 4.0

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http(s) URL")
        return value

    @field_validator("merchant_id", "terminal_id")
    @classmethod
    def _ident(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("expected 1-16 printable characters")
        return value


class KernelConfig(_Model):
    """``[terminal]``: the EMV kernel configuration file and extra CA public key files."""

    config: Path | None = None
    extra_ca_keys: list[Path] = []


class MqttConfig(_Model):
    """``[mqtt]``: head office broker (optional; absent means sync is off).

    With ``tls = true`` the broker's certificate is verified against ``ca_file`` (else the
    system's trust store) and its host name; ``cert_file`` + ``key_file`` add a client
    certificate for brokers that require one (``require_certificate true`` in mosquitto).
    """

    host: str
    port: Annotated[int, Field(ge=1, le=65535)] = 1883
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    username: str | None = None
    password_file: Path | None = None
    stock_path: Path | None = None  # default: stock.db beside the journal
    #: Seconds the broker keeps the shop's MQTT 5 session while it is away.
    session_expiry: Annotated[int, Field(ge=0, le=4294967295)] = 7 * 86400
    #: Keep each sale until head office acknowledges it by id, re-sending after ack_timeout
    #: (acks.db beside the stock file); off: the broker's PUBACK is the whole contract.
    acknowledgements: bool = False
    ack_timeout: Annotated[float, Field(gt=0)] = 60.0
    #: A SKU at or below this level is listed as low on the status page and in /metrics.
    low_stock: Annotated[int, Field(ge=0)] = 3

    @model_validator(mode="after")
    def _tls_files(self) -> MqttConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if not self.tls and (self.ca_file or self.cert_file):
            raise ValueError("ca_file, cert_file and key_file need tls = true")
        return self


def minor_units(value: str, currency: str) -> int:
    """A decimal amount (``"150.00"``) in minor units of ``currency`` (ISO 4217 exponent, CLDR).

    Raises:
        ValueError: Unknown currency, not a number, negative, or more decimals than the currency
            has.
    """
    try:
        validate_currency(currency)
    except UnknownCurrencyError:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency") from None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"{value!r}: expected a finite amount >= 0")
    minor = amount.scaleb(get_currency_precision(currency))
    if minor != minor.to_integral_value():
        raise ValueError(
            f"{value!r}: {currency} has {get_currency_precision(currency)} decimal places"
        )
    return int(minor)


class OfflineLimitsConfig(_Model):
    """``[store_and_forward.CUR]``: amounts as decimal strings in the currency (``"150.00"``);
    the policy is gateway/day/limits.py (docs/day.md)."""

    max_transaction: str
    max_total: str
    max_count: Annotated[int, Field(ge=0, le=100_000)]
    max_age_hours: Annotated[float, Field(gt=0, le=24 * 30)]

    @field_validator("max_transaction", "max_total")
    @classmethod
    def _decimal(cls, value: str) -> str:
        try:
            amount = Decimal(value)
        except InvalidOperation:
            raise ValueError('expected a decimal amount such as "150.00"') from None
        if not amount.is_finite() or amount < 0:
            raise ValueError("expected an amount >= 0")
        return value


class TimeoutsConfig(_Model):
    """``[timeouts]``: every wait of a lane is bounded (seconds)."""

    card: Annotated[float, Field(gt=0)] = 60.0
    reader_ready: Annotated[float, Field(gt=0)] = 5.0
    transaction: Annotated[float, Field(gt=0)] = 90.0
    #: A co-badged card: how long the till / customer display may take to choose the brand.
    brand_choice: Annotated[float, Field(gt=0)] = 10.0
    recovery: Annotated[float, Field(gt=0)] = 20.0


PinPadSpec = str


class LaneConfig(_Model):
    """``[[lanes]]``: one till and its reader."""

    id: Annotated[int, Field(ge=1, le=999)]
    name: str = ""
    reader: str
    interface: Literal["contact", "contactless", "auto"] = "auto"
    pin_pad: PinPadSpec = "none"
    terminal_id: str | None = None

    @field_validator("reader")
    @classmethod
    def _reader(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9+.-]*://.+", value):
            raise ValueError("expected a device URL such as pcsc://NAME or sim://lane1")
        if value.split("://", 1)[0] in ("serial", "tcp"):  # a TPE: its options checked now
            try:
                create_device(value)  # no I/O: parses the URL and the options
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("pin_pad")
    @classmethod
    def _pin_pad(cls, value: str) -> str:
        if value in ("none", "reader"):
            return value
        if value.startswith("virtual:") and re.fullmatch(
            r"[0-9]{4,12}(,[0-9]{4,12})*", value[8:]
        ):
            return value
        raise ValueError(
            "expected none, reader or virtual:PIN[,PIN...] (4-12 digits each, typed in order)"
        )

    @field_validator("terminal_id")
    @classmethod
    def _tid(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError("expected 1-16 printable characters")
        return value

    @property
    def display_name(self) -> str:
        """The name, or ``Lane N``."""
        return self.name or f"Lane {self.id}"

    def __repr__(self) -> str:
        pin = self.pin_pad.split(":")[0]  # never show a virtual PIN
        return f"LaneConfig(id={self.id}, reader={self.reader!r}, pin_pad={pin})"

    __str__ = __repr__


class DaemonConfig(_Model):
    """The whole file."""

    shop: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "EUR"
    #: The event loop ``posgw run`` runs on (gateway/daemon/event_loop.py): asyncio's own, by
    #: default, or uvloop (libuv's; docs/daemon.md "Event loop" has what each costs).
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"
    http: HttpConfig = HttpConfig()
    security: SecurityConfig = SecurityConfig()
    journal: JournalConfig = JournalConfig()
    vault: VaultConfig = VaultConfig()
    acquirer: AcquirerConfig
    terminal: KernelConfig = KernelConfig()
    mqtt: MqttConfig | None = None
    timeouts: TimeoutsConfig = TimeoutsConfig()
    #: ``[store_and_forward.EUR]``: offline-approval limits per currency (docs/day.md); a
    #: currency without an entry is never approved offline.
    store_and_forward: dict[str, OfflineLimitsConfig] = {}
    lanes: Annotated[list[LaneConfig], Field(min_length=1)]

    @field_validator("store_and_forward")
    @classmethod
    def _offline_limits(
        cls, section: dict[str, OfflineLimitsConfig]
    ) -> dict[str, OfflineLimitsConfig]:
        for currency, cfg in section.items():  # unknown currency, too many decimals: ValueError
            try:
                minor_units(cfg.max_transaction, currency)
                minor_units(cfg.max_total, currency)
            except ValueError as exc:
                raise ValueError(f"store_and_forward.{currency}: {exc}") from None
        return section

    @field_validator("lanes")
    @classmethod
    def _unique(cls, lanes: list[LaneConfig]) -> list[LaneConfig]:
        seen: set[int] = set()
        for lane in lanes:
            if lane.id in seen:
                raise ValueError(f"lane id {lane.id} appears twice")
            seen.add(lane.id)
        return lanes

    def lane(self, lane_id: int) -> LaneConfig | None:
        """The lane with this id."""
        return next((lane for lane in self.lanes if lane.id == lane_id), None)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(root)"


def parse_config(
    document: dict[str, Any], *, source: str = "config", base: Path | None = None
) -> DaemonConfig:
    """Validate a decoded TOML document; relative paths are resolved against ``base``.

    Raises:
        ConfigError: Naming the source, the field path and what is wrong.
    """
    try:
        config = DaemonConfig.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{source}: {_where(first['loc'])}: {first['msg']}") from None
    if base is None:
        return config
    return _resolve_paths(config, base)


def _resolve_paths(config: DaemonConfig, base: Path) -> DaemonConfig:
    def rel(path: Path | None) -> Path | None:
        return None if path is None or path.is_absolute() else base / path

    journal = config.journal.model_copy(
        update={"path": rel(config.journal.path) or config.journal.path}
    )
    vault = config.vault.model_copy(
        update={
            "key_file": rel(config.vault.key_file) or config.vault.key_file,
            "previous_key_files": [rel(p) or p for p in config.vault.previous_key_files],
        }
    )
    terminal = config.terminal.model_copy(
        update={
            "config": rel(config.terminal.config) or config.terminal.config,
            "extra_ca_keys": [rel(p) or p for p in config.terminal.extra_ca_keys],
        }
    )
    http = config.http.model_copy(
        update={
            "cert_file": rel(config.http.cert_file) or config.http.cert_file,
            "key_file": rel(config.http.key_file) or config.http.key_file,
            "client_ca_file": rel(config.http.client_ca_file) or config.http.client_ca_file,
        }
    )
    update: dict[str, Any] = {
        "journal": journal,
        "vault": vault,
        "terminal": terminal,
        "http": http,
    }
    if config.mqtt is not None:
        mqtt = config.mqtt
        update["mqtt"] = mqtt.model_copy(
            update={
                name: rel(getattr(mqtt, name)) or getattr(mqtt, name)
                for name in ("ca_file", "cert_file", "key_file", "password_file", "stock_path")
            }
        )
    return config.model_copy(update=update)


def load_config(path: str | Path) -> DaemonConfig:
    """Read and validate a TOML configuration file (relative paths: from its directory).

    Raises:
        ConfigError: Unreadable, not TOML (with the line), or an invalid field (with its path).
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read ({exc.strerror or type(exc).__name__})") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML ({exc})") from None
    return parse_config(document, source=file.name, base=file.resolve().parent)
