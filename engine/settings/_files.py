"""The files beside the config file: the keys file (``secrets.json``) and the API token.

Both are readable by the owner only (0600) in a directory only the owner can enter
(0700). The API token is made once: two processes that start at the same moment
each write a whole candidate to a private temporary file and hard-link it into
place, which only one of them can do (the same exclusivity as ``O_CREAT|O_EXCL``,
but a reader never sees a half-written token); the other reads the winner's.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from engine._secrets import FileSecretStore
from engine.settings._errors import ConfigError

if TYPE_CHECKING:
    from engine.settings._model import Settings

__all__ = ["API_TOKEN_ENV", "KeysFile", "api_token", "ensure_config_dir", "store_key"]

#: The daemon's bearer token, instead of the stored one.
API_TOKEN_ENV = "DEBRID_API_TOKEN"  # noqa: S105 - the name of a variable

_DIR_MODE = 0o700
_FILE_MODE = 0o600
# How long a reader waits for a token file that another process is still writing
# (only where hard links are not available and the file is created in place).
_WRITE_WAIT = 2.0


def _private_dir(path: Path) -> Path:
    """Make ``path`` (0700) when it is missing; a directory that exists keeps its mode.

    A config named with ``--config ./debrid.toml`` or ``/etc/debrid.toml`` lives in a
    directory that is not ours to lock (the files in it are 0600 themselves).
    """
    try:
        if path.is_dir():
            return path
        path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        # mkdir's mode passes through the umask.
        if stat.S_IMODE(path.stat().st_mode) != _DIR_MODE:
            os.chmod(path, _DIR_MODE)
    except OSError as error:
        raise ConfigError(str(path), "config_dir", f"cannot make the directory: "
                          f"{error.strerror or error}", expected="a directory this user can "
                          "write (set --config or DEBRID_CONFIG elsewhere)") from None
    return path


def _private_file(path: Path) -> None:
    """Take group and other access away from a file that has it (an old or copied file)."""
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, _FILE_MODE)
    except OSError:
        pass  # not ours to change: reading it still works


def ensure_config_dir(settings: Settings) -> Path:
    """Create the config directory (mode 0700, parents as needed) and return it."""
    return _private_dir(settings.config_dir)


class KeysFile(FileSecretStore):
    """The keys file: a ``FileSecretStore`` whose writes first make its directory 0700."""

    def update(self, changes: Mapping[str, str | None]) -> None:
        """See ``FileSecretStore.update``; the file is written 0600 in a 0700 directory."""
        _private_dir(self.path.parent)
        super().update(changes)


def store_key(settings: Settings, key: str, value: str) -> None:
    """Store a secret (``realdebrid.api_token``, ``torbox.api_key``...) in the keys file."""
    source = str(settings.secrets_path)
    if not isinstance(key, str) or not key.strip() or key != key.strip():
        raise ConfigError(source, "key", "not a key name", value=key,
                          expected="a non-empty name such as 'torbox.api_key'")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(source, key, "the value is empty", expected="a non-empty string")
    ensure_config_dir(settings)
    try:
        settings.secret_store().set(key, value)
    except OSError as error:
        raise ConfigError(source, key, f"cannot be written: {error.strerror or error}",
                          expected="a keys file this user can write") from None
    _private_file(settings.secrets_path)


def api_token(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """The daemon's bearer token: ``DEBRID_API_TOKEN``, else the ``api-token`` file.

    Without either, a new token (``secrets.token_urlsafe(32)``) is written to the
    file, so that every later call, in this process or another, returns the same.
    """
    env = os.environ if env is None else env
    given = env.get(API_TOKEN_ENV, "").strip()
    if given:
        return given
    path = settings.api_token_path
    token = _read_token(path)
    if token is not None:
        return token
    ensure_config_dir(settings)
    candidate = secrets.token_urlsafe(32)
    try:
        made = _create_once(path, candidate)
    except OSError as error:
        raise ConfigError(str(path), "api-token", f"cannot be written: "
                          f"{error.strerror or error}", expected="a config directory this "
                          "user can write, or DEBRID_API_TOKEN") from None
    if made:
        return candidate
    token = _read_token(path)
    if token is None:  # written and removed between our two looks: an outside hand
        raise ConfigError(str(path), "api-token", "the token file vanished while being read")
    return token


def _read_token(path: Path) -> str | None:
    """The token in ``path``, None when there is no file."""
    deadline = time.monotonic() + _WRITE_WAIT
    while True:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(str(path), "api-token", f"cannot be read: {exc}",
                              expected="a file holding one token") from None
        if token:
            _private_file(path)
            return token
        if time.monotonic() >= deadline:
            raise ConfigError(str(path), "api-token", "the file is empty",
                              expected="a file holding one token (delete it to get a new one)")
        time.sleep(0.01)  # being written in place by another process (no hard links here)


def _create_once(path: Path, token: str) -> bool:
    """Write ``token`` to ``path`` unless it exists; False when another writer won."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600, O_EXCL
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            return _create_in_place(path, token)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def _create_in_place(path: Path, token: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return True


def token_proof(token: str, nonce: str) -> str:
    """What only a holder of ``token`` can answer to ``nonce``: the command line asks a
    daemon for it before it sends the token, so that whatever else listens on the
    port (another user's process while the daemon is down) never receives it."""
    return hmac.new(token.encode(), b"debrid-daemon-proof:" + nonce.encode(),
                    "sha256").hexdigest()
