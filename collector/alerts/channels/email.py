"""Email over SMTP (stdlib ``smtplib``): STARTTLS (default) or implicit TLS, AUTH when a
username is configured. The password is read from its reference at each send."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from collector.alerts.channels import DeliveryError, Message, redact, register
from collector.alerts.config import ChannelName, EmailCfg
from contract.configfile import ConfigError


@register(ChannelName.EMAIL)
class EmailChannel:
    name = ChannelName.EMAIL

    def __init__(self, cfg: EmailCfg) -> None:
        self.cfg = cfg

    def build(self, msg: Message, recipient: str) -> EmailMessage:
        em = EmailMessage()
        em["Subject"] = msg.title
        em["From"] = formataddr((self.cfg.from_name, self.cfg.from_addr))
        em["To"] = recipient
        em["Date"] = formatdate(usegmt=True)
        em["Message-ID"] = make_msgid("spbe", self.cfg.from_addr.rsplit("@", 1)[-1])
        em["Content-Language"] = msg.language
        em["X-SPBE-Event"] = msg.event
        em["X-SPBE-Notification"] = str(msg.notification_id)
        em.set_content(msg.body)
        return em

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(
                cafile=str(self.cfg.ca_file) if self.cfg.ca_file else None)
        except (OSError, ssl.SSLError) as e:
            raise DeliveryError(f"email: cannot load CA file {self.cfg.ca_file}: {e}") from e

    def send(self, msg: Message, recipient: str) -> None:
        cfg = self.cfg
        password = None
        if cfg.password is not None:
            try:
                password = cfg.password.value("SMTP password")
            except ConfigError as e:
                raise DeliveryError(f"email: {e}") from e
        em = self.build(msg, recipient)
        try:
            smtp: smtplib.SMTP
            if cfg.security == "tls":
                smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s,
                                        context=self._context())
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
            with smtp:
                smtp.ehlo()
                if cfg.security == "starttls":
                    if not smtp.has_extn("starttls"):
                        raise DeliveryError(f"email: {cfg.host}:{cfg.port} does not offer "
                                            "STARTTLS (security: starttls)")
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if cfg.username and password is not None:
                    smtp.login(cfg.username, password)
                smtp.send_message(em, from_addr=cfg.from_addr, to_addrs=[recipient])
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(f"email: SMTP authentication as {cfg.username!r} failed "
                                f"({e.smtp_code})") from e
        except smtplib.SMTPRecipientsRefused as e:
            codes = ", ".join(str(c) for c, _ in e.recipients.values())
            raise DeliveryError(f"email: recipient refused ({codes})",
                                permanent=all(c >= 500 for c, _ in e.recipients.values())
                                ) from e
        except smtplib.SMTPResponseException as e:
            text = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) \
                else str(e.smtp_error)
            raise DeliveryError(redact(f"email: SMTP {e.smtp_code} {text[:200]}", password),
                                permanent=500 <= e.smtp_code < 600) from e
        except (smtplib.SMTPException, OSError) as e:
            raise DeliveryError(redact(f"email: {cfg.host}:{cfg.port}: {type(e).__name__}: {e}",
                                       password)) from e
