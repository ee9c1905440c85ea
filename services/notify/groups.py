"""Per-group channel configuration: which robot and SMS reach a group, and each office group.

The one place a group's robot and its secrets are configured: assignment's directory names the
groups (their ids are the keys here) and refuses robot fields. Loaded once at start from a YAML
file. Keys, tokens and secrets are stored sealed with the PII key (`gridline notify seal VALUE`
prints the sealed form), so the file at rest holds no credential.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from gridline.personal import Sealer

SEAL_CONTEXT = "gridline.notify.secret"

RobotKind = Literal["wecom", "dingtalk", "feishu", "signed_webhook"]
SmsProvider = Literal["aliyun", "tencent", "gateway"]


class GroupsFileError(ValueError):
    """The groups file is unreadable, malformed or holds a secret that does not unseal."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Robot(_Strict):
    """A group's chat robot; `key` is the WeCom key, DingTalk access token, Feishu hook token or
    the signed webhook's URL."""

    kind: RobotKind
    key: SecretStr
    secret: SecretStr = SecretStr("")
    mention_user_ids: tuple[str, ...] = ()
    # Plain text for groups whose clients render markdown poorly; markdown (a card on Feishu)
    # otherwise.
    format: Literal["markdown", "text"] = "markdown"

    @property
    def robot_id(self) -> str:
        """Names the robot in budgets and logs without revealing its key."""
        digest = base64.b32encode(hashlib.sha256(self.key.get_secret_value().encode()).digest())
        return f"{self.kind}:{digest[:12].decode().lower()}"


class Group(_Strict):
    """How one recipient group is reached beyond the inbox and the generic webhook."""

    robot: Robot | None = None
    sms: bool = False
    # Where the group's SMS goes when the notification names no phone (offices).
    sms_phone: SecretStr = SecretStr("")


class AliyunSms(_Strict):
    """Alibaba Cloud SMS account and template (`${kind}` and `${title}` variables)."""

    provider: Literal["aliyun"]
    access_key_id: SecretStr
    access_key_secret: SecretStr
    sign_name: str
    template_code: str


class TencentSms(_Strict):
    """Tencent Cloud SMS account and template ({1} kind, {2} title)."""

    provider: Literal["tencent"]
    secret_id: SecretStr
    secret_key: SecretStr
    sdk_app_id: str
    sign_name: str
    template_id: str
    region: str = "ap-guangzhou"


class GatewaySms(_Strict):
    """A generic HTTP SMS gateway: JSON POST with a bearer token."""

    provider: Literal["gateway"]
    url: str
    token: SecretStr


# What an unknown group gets: the inbox and the webhook only.
_UNCONFIGURED = Group()

SmsAccount = Annotated[AliyunSms | TencentSms | GatewaySms, Field(discriminator="provider")]


class GroupsConfig(_Strict):
    """The whole file: groups by id, SMS account, and the office group of each chain level."""

    groups: dict[str, Group] = {}
    sms: SmsAccount | None = None
    offices: dict[int, str] = {}

    def group(self, group_id: str) -> Group:
        """A group's configuration; unknown groups get the inbox and webhook only."""
        return self.groups.get(group_id, _UNCONFIGURED)

    def office_for(self, level: int) -> str | None:
        """The office group told when a channel of a group at `level` breaks: the nearest
        configured office at this level or above."""
        above = sorted(lvl for lvl in self.offices if lvl >= level)
        return self.offices[above[0]] if above else None


def seal_secret(sealer: Sealer, value: str) -> str:
    """The sealed, base64 form of a secret as the groups file stores it."""
    return "sealed:" + base64.urlsafe_b64encode(sealer.seal(value, SEAL_CONTEXT)).decode()


def _unseal_tree(node: object, sealer: Sealer, where: str) -> object:
    if isinstance(node, dict):
        return {k: _unseal_tree(v, sealer, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [_unseal_tree(v, sealer, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str) and node.startswith("sealed:"):
        try:
            return sealer.unseal(base64.urlsafe_b64decode(node[len("sealed:") :]), SEAL_CONTEXT)
        except Exception as exc:
            raise GroupsFileError(
                f"{where}: the sealed value does not unseal with the PII key"
            ) from exc
    return node


def parse_groups(text: str, sealer: Sealer, source: str = "groups file") -> GroupsConfig:
    """Parse and unseal a groups file's text; a clear error names what is wrong."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise GroupsFileError(f"{source}: not YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise GroupsFileError(f"{source}: expected a mapping at the top")
    try:
        return GroupsConfig.model_validate(_unseal_tree(raw, sealer, source))
    except ValidationError as exc:
        raise GroupsFileError(f"{source}: {exc}") from exc


def load_groups(path: Path | None, sealer: Sealer) -> GroupsConfig:
    """The configuration from `path`, or none when no file is configured."""
    if path is None:
        return GroupsConfig()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GroupsFileError(f"{path}: {exc}") from exc
    return parse_groups(text, sealer, str(path))
