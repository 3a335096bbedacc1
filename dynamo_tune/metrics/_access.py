"""`PrometheusAccess`: credentials and TLS for a protected Prometheus. Pure, except reading secrets.

`bearer_token()`, `BasicAuthSpec.password()` and `verify()` read the named environment
variable or file when a client is built (`_prom_api.new_client`, which turns them into
httpx's auth and TLS settings).

A study file is stored with its study and a command line lands in shell histories, so both
say WHERE a secret is (an environment variable or a file), never the secret itself: a key
that would hold one (`token`, `password`, ...) and credentials inside a URL are rejected with
a hint. Secret values go only into the httpx client; every message names the variable or the
file, never its content.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Annotated, Any, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dynamo_tune.errors import SpecError

EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=200)]
"""The name of an environment variable holding a secret."""

LITERAL_SECRET_KEYS = ("token", "bearer_token", "password", "authorization", "api_key")
"""Keys a user might write a secret under; rejected with a hint instead of "unknown key"."""

USE_ENV_OR_FILE = (
    "the study file is stored with the study: give an environment variable or a file "
    "(bearer_token_env / bearer_token_file, basic_auth.password_env / password_file)"
)


def url_has_credentials(url: str) -> bool:
    """True when `url` carries `user[:password]@` before its host. Pure."""
    return "@" in urlsplit(url).netloc


def _reject_literal_secrets(data: Any, keys: tuple[str, ...]) -> None:
    if isinstance(data, dict):
        found = [key for key in keys if key in data]
        if found:
            raise ValueError(f"`{found[0]}`: a secret cannot be written here; {USE_ENV_OR_FILE}")


def _read_env(name: str, what: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SpecError(f"{what}: the environment variable {name} is not set or empty")
    return value


def _read_file(path: Path, what: str) -> str:
    try:
        value = path.expanduser().read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise SpecError(f"{what}: {path} is not UTF-8 text") from None  # no bytes quoted
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SpecError(f"{what}: cannot read {path}: {reason}") from None
    if not value:
        raise SpecError(f"{what}: {path} is empty")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasicAuthSpec(_Strict):
    """HTTP basic auth: `username` and the password's environment variable or file."""

    username: str = Field(min_length=1, description="The user name (not a secret)")
    password_env: EnvName | None = Field(default=None, description="Variable holding it")
    password_file: Path | None = Field(default=None, description="File holding it")

    @model_validator(mode="before")
    @classmethod
    def _no_literal_password(cls, data: Any) -> Any:
        _reject_literal_secrets(data, ("password",))
        return data

    @model_validator(mode="after")
    def _one_password_source(self) -> Self:
        if (self.password_env is None) == (self.password_file is None):
            raise ValueError("give exactly one of `password_env` or `password_file`")
        return self

    def password(self) -> str:
        """The password, read now; SpecError naming the variable or file if unavailable."""
        if self.password_env is not None:
            return _read_env(self.password_env, "basic_auth.password_env")
        assert self.password_file is not None
        return _read_file(self.password_file, "basic_auth.password_file")


class TlsSpec(_Strict):
    """How the server's certificate is checked (default: against the system's CAs)."""

    ca_file: Path | None = Field(default=None, description="PEM CA bundle; trusted alone")
    insecure_skip_verify: bool = Field(default=False, description="Accept any certificate")

    @model_validator(mode="after")
    def _one_choice(self) -> Self:
        if self.ca_file is not None and self.insecure_skip_verify:
            raise ValueError("`ca_file` and `insecure_skip_verify: true` contradict each other")
        return self


class PrometheusAccess(_Strict):
    """Credentials (a bearer token or basic auth, at most one) and TLS for Prometheus.

    All fields empty means no credentials and the system's CAs. Secrets are read only by
    `bearer_token()` and `BasicAuthSpec.password()` (when a client is built), never stored on
    the model.
    """

    bearer_token_env: EnvName | None = Field(
        default=None, description="Environment variable holding a bearer token"
    )
    bearer_token_file: Path | None = Field(default=None, description="File holding one")
    basic_auth: BasicAuthSpec | None = Field(default=None, description="HTTP basic auth")
    tls: TlsSpec | None = Field(default=None, description="CA file or skip verification")

    @model_validator(mode="before")
    @classmethod
    def _no_literal_secrets(cls, data: Any) -> Any:
        _reject_literal_secrets(data, LITERAL_SECRET_KEYS)
        return data

    @model_validator(mode="after")
    def _one_credential(self) -> Self:
        given = [
            name
            for name in ("bearer_token_env", "bearer_token_file", "basic_auth")
            if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give at most one credential, but got {' and '.join(given)}")
        return self

    @property
    def has_settings(self) -> bool:
        """True when any credential or TLS setting is given."""
        return any(getattr(self, name) is not None for name in PrometheusAccess.model_fields)

    def access_only(self) -> PrometheusAccess:
        """These settings as a plain `PrometheusAccess` (drops a subclass's other fields)."""
        return PrometheusAccess.model_validate(
            {name: getattr(self, name) for name in PrometheusAccess.model_fields}
        )

    def bearer_token(self) -> str | None:
        """The bearer token, read now (None without one); SpecError naming a missing variable
        or file."""
        if self.bearer_token_env is not None:
            return _read_env(self.bearer_token_env, "bearer_token_env")
        if self.bearer_token_file is not None:
            return _read_file(self.bearer_token_file, "bearer_token_file")
        return None

    def verify(self) -> ssl.SSLContext | bool | None:
        """httpx's `verify`: False to skip checks, a context trusting only `ca_file`, or
        None for the caller's default (the system's CAs). SpecError if `ca_file` cannot load."""
        if self.tls is None:
            return None
        if self.tls.insecure_skip_verify:
            return False
        if self.tls.ca_file is None:
            return None
        path = self.tls.ca_file.expanduser()
        try:
            return ssl.create_default_context(cafile=str(path))
        except ssl.SSLError as exc:  # an OSError too: first
            raise SpecError(f"tls.ca_file: {path} is not a PEM CA bundle ({exc.reason})") from None
        except OSError as exc:
            raise SpecError(f"tls.ca_file: cannot read {path}: {exc.strerror or exc}") from None
