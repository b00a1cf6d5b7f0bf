"""Config backup: mask secrets, drop volatile lines, hash — so equal hashes mean no real change.

Per platform, two tables of regular expressions (data, not code):

* ``mask``: each pattern has a named group ``secret``; its text becomes ``<masked>`` (a quoted
  value keeps its quotes). A rule may be limited to a config section (RouterOS ``/snmp
  community``, the Junos ``snmp { ... }`` stanza). Every replacement is counted.
* ``volatile``: lines that change without a configuration change (timestamps, "last
  changed" headers, byte counts, NTP clock drift) are dropped and counted.

Then line endings and trailing blanks are normalised and ``sha256`` is taken over the result,
which is exactly the ``content`` of the :class:`contract.report.ConfigSnapshot`.

So that a changed password still changes the hash, a masked value can carry a fingerprint:
``<masked:1f2e3d4c>``, the first 32 bits of HMAC-SHA256 over the secret with a key only the
agent holds (:func:`set_fingerprint_key`, e.g. a random key kept beside the spool; until one is
set, a key stretched with PBKDF2 from the device's own SSH credential). The collector sees that
a secret changed, never the secret, and cannot test guesses without the key.

Example::

    >>> clean("ios", "enable secret 5 $1$abc\\n! Last configuration change at 10:00\\nend\\n")
    Cleaned(content='enable secret 5 <masked>\\nend\\n', masked=1, ignored=1)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from dataclasses import dataclass
from datetime import datetime

from agent.drivers import DriverError
from contract.report import ConfigSnapshot, utcnow

MASK = "<masked>"


@dataclass(frozen=True)
class MaskRule:
    pattern: re.Pattern[str]
    section: str | None = None  # only inside this section (see Profile.section_header)


@dataclass(frozen=True)
class Profile:
    mask: tuple[MaskRule, ...]
    volatile: tuple[re.Pattern[str], ...]
    # a line matching section_header starts section group(1); section_end closes it
    section_header: re.Pattern[str] | None = None
    section_end: re.Pattern[str] | None = None
    unwrap_continuations: bool = False  # RouterOS export: "...\\\n    more" -> one line


def _r(*patterns: str, section: str | None = None) -> tuple[MaskRule, ...]:
    return tuple(MaskRule(re.compile(p), section) for p in patterns)


def _v(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


_N = r"(?: (?:[0-9]|sha512|sha256|md5|scrypt))?"  # Cisco/Arista "type" word before a secret

# Cisco IOS and Arista EOS share their configuration language.
_CISCO_MASK = _r(
    rf"^\s*enable (?:secret|password)(?: level \d+)?{_N} (?P<secret>\S+)",
    rf"^\s*username \S+ .*?\b(?:password|secret){_N} (?P<secret>\S+)",
    r"^\s*snmp-server community (?P<secret>\S+)",
    r"^\s*snmp-server host \S+(?: vrf \S+)?(?: (?:informs|traps))?(?: version (?:1|2c))?"
    r" (?P<secret>(?!version\b|informs\b|traps\b|vrf\b)\S+)",
    r"^\s*snmp-server user \S+ .*?\bauth (?:md5|sha\S*)(?: \d)? (?P<secret>\S+)",
    r"^\s*snmp-server user \S+ .*?\bpriv (?:des|3des|aes(?: \d+)?|aes\d+)(?: \d)?"
    r" (?P<secret>\S+)",
    r"^\s*(?:tacacs-server|radius-server)\b.*?\bkey(?: [0-9])? (?P<secret>\S+)",
    r"^\s+key [067] (?P<secret>\S+)\s*$",
    r"^\s+key (?P<secret>(?!\d+\s*$)\S+)\s*$",
    r"\bkey-string(?: [0-9])? (?P<secret>\S+)",
    r"^\s*crypto isakmp key(?: [0-9])? (?P<secret>\S+)",
    r"\bpre-shared-key(?: (?:local|remote))?(?: (?:address \S+|hostname \S+))?(?: key)?"
    r"(?: [0-9])? (?P<secret>\S+)",
    r"\bip ospf authentication-key(?: [0-9])? (?P<secret>\S+)",
    r"\bip ospf message-digest-key \d+ md5(?: [0-9])? (?P<secret>\S+)",
    r"^\s*neighbor \S+ password(?: [0-9])? (?P<secret>\S+)",
    r"^\s*ppp (?:chap|pap) (?:password|sent-username \S+ password)(?: [0-9])?"
    r" (?P<secret>\S+)",
    r"^\s+(?:password|secret)(?: [0-9])? (?P<secret>\S+)",
    r"\bwpa-psk ascii(?: [0-9])? (?P<secret>\S+)",
)

_CISCO_VOLATILE = _v(
    r"^! Last configuration change at ",
    r"^! NVRAM config last updated at ",
    r"^! No configuration change since last restart",
    r"^ntp clock-period ",
    r"^Current configuration : \d+ bytes",
    r"^Building configuration\.\.\.",
    r"^Load for five secs",
    r"^Time source is ",
    r"^! Command: show running-config",
    r"^! Time: ",
    r"^! Startup-config last modified at ",
)

_JUNOS_VALUE = r"(?P<secret>\"(?:[^\"\\]|\\.)*\"|[^\s;{}]+)"

PROFILES: dict[str, Profile] = {
    "ios": Profile(mask=_CISCO_MASK, volatile=_CISCO_VOLATILE),
    "eos": Profile(mask=_CISCO_MASK, volatile=_CISCO_VOLATILE),
    "junos": Profile(
        mask=_r(
            r"\b(?:encrypted-password|secret|authentication-key|ascii-text|hexadecimal|"
            r"authentication-password|privacy-password|simple-password|shared-secret)"
            rf" {_JUNOS_VALUE}",
            r"(?P<secret>\"\$[1569]\$[^\"]*\")",
            r"^set snmp community (?P<secret>\S+)",
            r"^set snmp v3 .*\b(?:authentication-key|privacy-key) (?P<secret>\S+)",
        ) + _r(r"^\s+community (?P<secret>\"[^\"]*\"|\S+) \{", section="snmp"),
        volatile=_v(r"^## Last commit: ", r"^## Last changed: ",
                    r"^\{(?:master|backup|primary|secondary|linecard)[^}]*\}\s*$"),
        section_header=re.compile(r"^([\w-]+) \{\s*$"),
        section_end=re.compile(r"^\}\s*$"),
    ),
    "huawei_vrp": Profile(
        mask=_r(
            r"\b(?:irreversible-cipher|cipher) (?P<secret>\S+)",
            r"\bpassword simple (?P<secret>\S+)",
            r"\b(?:plain) (?P<secret>\S+)",
            r"^\s*snmp-agent community (?:read|write) (?!cipher\b)(?P<secret>\S+)",
        ),
        volatile=_v(r"^!Software Version ", r"^!Last configuration was (?:updated|saved) at",
                    r"^!Time: ", r"^!Current time", r"^!Config created at"),
    ),
    "routeros": Profile(
        mask=_r(
            r"(?<![\w-])(?:password|secret|passphrase|wpa-pre-shared-key|wpa2-pre-shared-key|"
            r"authentication-password|encryption-password|auth-key|private-key|pre-shared-key|"
            r"preshared-key|psk|trap-community)=(?P<secret>\"(?:[^\"\\]|\\.)*\"|\S+)",
        ) + _r(r"(?<![\w-])name=(?P<secret>\"(?:[^\"\\]|\\.)*\"|\S+)",
               section="/snmp community"),
        volatile=_v(r"^# \S+ \S+ by RouterOS ", r"^# \w{3}/\d{2}/\d{4} \S+ by RouterOS"),
        section_header=re.compile(r"^(/[\w\- ]+?)\s*$"),
        unwrap_continuations=True,
    ),
    "linux": Profile(mask=(), volatile=()),
}


@dataclass(frozen=True)
class Cleaned:
    content: str
    masked: int
    ignored: int


_key_lock = threading.Lock()
_agent_key: bytes | None = None
PBKDF2_ROUNDS = 100_000


def set_fingerprint_key(key: bytes) -> None:
    """Set the agent-wide secret key for secret fingerprints (at least 16 random bytes)."""
    global _agent_key
    if len(key) < 16:
        raise ValueError("fingerprint key must be at least 16 bytes")
    with _key_lock:
        _agent_key = bytes(key)


def fingerprint_key(device: str, credential: bytes | None) -> bytes | None:
    """The key for ``device``: from the agent key if set, else stretched from the device's
    SSH credential; None (plain ``<masked>``) if there is neither."""
    with _key_lock:
        agent_key = _agent_key
    if agent_key is not None:
        return hmac.new(agent_key, b"device:" + device.encode(), hashlib.sha256).digest()
    if not credential:
        return None
    return hashlib.pbkdf2_hmac("sha256", credential, b"spbe-config-fp:" + device.encode(),
                               PBKDF2_ROUNDS)


def _mask_line(line: str, rules: tuple[MaskRule, ...], section: str | None,
               key: bytes | None) -> tuple[str, int]:
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        value = m.group("secret")
        if not value:
            return m.group(0)
        quoted = len(value) >= 2 and value[0] == value[-1] == '"'
        if value.strip('"').startswith(MASK[:-1]):
            return m.group(0)
        count += 1
        token = MASK
        if key is not None:
            digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:8]
            token = f"{MASK[:-1]}:{digest}>"
        new = f'"{token}"' if quoted else token
        start, end = m.span("secret")
        base = m.start(0)
        whole = m.group(0)
        return whole[:start - base] + new + whole[end - base:]

    for rule in rules:
        if rule.section is not None and rule.section != section:
            continue
        line = rule.pattern.sub(repl, line)
    return line, count


def clean(platform: str, text: str, key: bytes | None = None) -> Cleaned:
    """Mask secrets and drop volatile lines of one configuration text. With ``key``, each
    masked value carries its fingerprint (see the module docstring)."""
    try:
        profile = PROFILES[platform]
    except KeyError:
        raise DriverError("config", f"no config-backup profile for platform {platform!r}; "
                                    f"valid: {', '.join(sorted(PROFILES))}") from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if profile.unwrap_continuations:
        text = re.sub(r"\\\n\s+", "", text)
    out: list[str] = []
    masked = ignored = 0
    section: str | None = None
    for raw in text.split("\n"):
        line = raw.rstrip()
        if any(p.search(line) for p in profile.volatile):
            ignored += 1
            continue
        if profile.section_header is not None:
            h = profile.section_header.match(line)
            if h:
                section = h.group(1)
            elif profile.section_end is not None and profile.section_end.match(line):
                section = None
        line, n = _mask_line(line, profile.mask, section, key)
        masked += n
        out.append(line)
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    content = "\n".join(out) + "\n" if out else ""
    return Cleaned(content=content, masked=masked, ignored=ignored)


def snapshot(device: str, driver: str, platform: str, text: str,
             observed_at: datetime | None = None, key: bytes | None = None) -> ConfigSnapshot:
    """Build the ConfigSnapshot of ``text``; DriverError('parse') if nothing is left."""
    c = clean(platform, text, key)
    if not c.content.strip():
        raise DriverError("parse", f"device {device}: the configuration read is empty")
    return ConfigSnapshot(
        observed_at=observed_at or utcnow(), device=device, driver=driver,
        sha256=hashlib.sha256(c.content.encode()).hexdigest(), content=c.content,
        masked_secrets=c.masked, ignored_lines=c.ignored)
