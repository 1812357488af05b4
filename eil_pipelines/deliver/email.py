"""Email: building a MIME message, and sending it over SMTP with smtplib.

A report email is::

    multipart/mixed
      multipart/alternative
        text/plain                 the Markdown report (or the HTML as text)
        multipart/related
          text/html                the report, styles inlined
          image/png  (inline)      one per chart, referenced as cid:…
      application/pdf …            the attachments asked for

Building happens when a run's messages are queued; sending takes the stored
bytes as they are, so a retry sends exactly the message first rendered, with
the same ``Message-ID`` (a receiver that sees it twice can drop the copy).
"""

from __future__ import annotations

import hashlib
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from ..errors import DeliveryError
from ..spec.project import SmtpSettings
from .html import InlineImage


class SendError(DeliveryError):
    """A message could not be sent.  ``permanent`` when trying again cannot help
    (an SMTP 5xx reply such as "no such user"); the text names the server and
    says what happened, and is redacted before anyone sees it."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


#: MIME types of the files ``attach`` may name.
ATTACHMENT_TYPES = {
    "md": ("text", "markdown"),
    "html": ("text", "html"),
    "pdf": ("application", "pdf"),
    "csv": ("text", "csv"),
    "xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    "parquet": ("application", "vnd.apache.parquet"),
}


@dataclass(frozen=True)
class Attachment:
    """A file attached to a message."""

    filename: str
    data: bytes
    maintype: str
    subtype: str


def message_id(key: str, sender_address: str) -> str:
    """A ``Message-ID`` derived from the outbox key: the same message always gets
    the same id, so a copy sent again after a crash can be recognised."""
    domain = sender_address.rpartition("@")[2] or "eil-pipelines.invalid"
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@{domain}>"


def build_message(
    *,
    sender: str,
    recipient: str,
    subject: str,
    text: str,
    html: str | None = None,
    images: Sequence[InlineImage] = (),
    attachments: Sequence[Attachment] = (),
    msg_id: str,
    date: datetime,
    pipeline: str,
) -> bytes:
    """The message's bytes, with CRLF line ends, ready for ``sendmail``.

    Text parts are quoted-printable, so the message is 7-bit clean and any
    server takes it.  ``Auto-Submitted`` keeps auto-responders from replying.
    """
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = " ".join(subject.split())  # a newline would end the header
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = msg_id
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Eil-Pipeline"] = pipeline
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
        *_, html_part = msg.iter_parts()  # the part add_alternative just added
        for image in images:
            html_part.add_related(
                image.data,
                maintype="image",
                subtype="png",
                cid=f"<{image.cid}>",
                filename=image.filename,
                disposition="inline",
            )
    for attachment in attachments:
        msg.add_attachment(
            attachment.data,
            maintype=attachment.maintype,
            subtype=attachment.subtype,
            filename=attachment.filename,
            # Reports and exports are UTF-8: say so, or clients guess ASCII.
            params={"charset": "utf-8"} if attachment.maintype == "text" else {},
        )
    return msg.as_bytes(policy=policy.SMTP)


def send_email(smtp: SmtpSettings, recipient: str, message: bytes) -> None:
    """Send ``message`` to ``recipient`` through the configured server.

    Raises :class:`SendError` saying what went wrong; ``permanent`` for a 5xx
    reply (RFC 5321: the same request will fail again), else it is worth a retry.
    """
    host, port = smtp.host, smtp.effective_port
    timeout = smtp.timeout.total_seconds()
    where = f"SMTP server {host}:{port}"
    context = ssl.create_default_context()
    step = "connecting"
    try:
        if smtp.tls:
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if smtp.use_starttls:
                step = "starting TLS"
                client.ehlo()
                if not client.has_extn("starttls"):
                    raise SendError(
                        f"{where} does not offer STARTTLS (set smtp.starttls = false only for "
                        "a relay on a trusted network)"
                    )
                client.starttls(context=context)
                client.ehlo()
            if smtp.username:
                step = "logging in"
                client.login(smtp.username, smtp.password or "")
            step = "sending"
            client.sendmail(smtp.sender_address, [recipient], message)
    except SendError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()), (0, b""))
        raise SendError(
            f"{where} refused the recipient {recipient}: {code} {_text(reply)}",
            permanent=500 <= code < 600,
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(
            f"{where} refused the login: {exc.smtp_code} {_text(exc.smtp_error)}",
            permanent=500 <= exc.smtp_code < 600,
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise SendError(
            f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)} while {step}",
            permanent=500 <= exc.smtp_code < 600,
        ) from None
    except smtplib.SMTPServerDisconnected as exc:
        # smtplib reports a read that timed out as a disconnection.
        if "timed out" in str(exc):
            raise SendError(f"{where} did not answer within {timeout:g}s while {step}") from None
        raise SendError(f"{where} closed the connection while {step}: {exc}") from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(f"{where}: {exc} (while {step})", permanent=True) from None
    except TimeoutError:
        raise SendError(f"{where} did not answer within {timeout:g}s while {step}") from None
    except ConnectionRefusedError:
        raise SendError(f"{where} refused the connection") from None
    except ssl.SSLError as exc:
        raise SendError(f"{where}: TLS failed while {step}: {exc.reason or exc}") from None
    except socket.gaierror as exc:
        raise SendError(f"{where}: cannot resolve the host name: {exc.strerror or exc}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"{where}: {exc} (while {step})") from None


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())
