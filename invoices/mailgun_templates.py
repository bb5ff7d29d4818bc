"""Whether Mailgun's stored invoice templates exist and read the variables we send.

Mailgun renders the invoice email's HTML from its stored template (`invoice_new`,
`invoice_notify`) with our `t:variables`; a template that is missing fails every send, and one
that names a variable we do not send prints nothing where, say, the amount should be. This
reads each template's active version (`GET /v3/{domain}/templates/{name}?active=yes`) and
compares the Handlebars variables it uses with `invoice_email_variables`.
"""

import re
from dataclasses import dataclass, field
from urllib.parse import quote

from anymail.utils import get_anymail_setting

from .mailgun import MailgunUnavailable, _events_url, _get_json

# What each template cannot do without; every template may use any variable we send.
REQUIRED_VARIABLES = {
    "invoice_new": frozenset({"number", "amount_due", "hosted_invoice_url"}),
    "invoice_notify": frozenset({"number", "amount_due"}),
}
DEFAULT_REQUIRED = frozenset({"number", "amount_due"})
# {{name}}, {{{name}}}, {{#if name}}, {{#unless name}}, {{name.part}}; not {{/if}} or {{else}}.
_MUSTACHE = re.compile(r"\{\{\{?\s*(?:[#^]\s*(?:if|unless|with|each|equal)\s+)?([A-Za-z_][\w.]*)")
_KEYWORDS = frozenset({"else", "this"})


@dataclass
class TemplateCheck:
    name: str
    tag: str = ""
    used: frozenset[str] = frozenset()
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def template_variables(content: str) -> frozenset[str]:
    """The top-level variables a Handlebars template reads."""
    names = {match.split(".")[0] for match in _MUSTACHE.findall(content)}
    return frozenset(names - _KEYWORDS)


def mailgun_template_check(*, name: str, sent: frozenset[str]) -> TemplateCheck:
    """One stored template against the variables we send; Mailgun unreachable raises."""
    check = TemplateCheck(name=name)
    api_key = get_anymail_setting("api_key", esp_name="Mailgun", allow_bare=True, default="")
    if not api_key:
        raise MailgunUnavailable("no MAILGUN_API_KEY is set")
    url = f"{_events_url().removesuffix('/events')}/templates/{quote(name, safe='')}?active=yes"
    try:
        answer = _get_json(url, api_key)
    except MailgunUnavailable as exc:
        if "HTTP 404" in str(exc):
            check.problems.append(f"{name}: no such stored template on the sending domain")
            return check
        raise
    version = (answer.get("template") or {}).get("version") or {}
    content = version.get("template")
    if not isinstance(content, str) or not content.strip():
        check.problems.append(f"{name}: the template has no active version with content")
        return check
    check.tag = str(version.get("tag") or "")
    check.used = template_variables(content)
    unknown = sorted(check.used - sent)
    if unknown:
        check.problems.append(f"{name}: uses variables we never send: {', '.join(unknown)}")
    missing = sorted(REQUIRED_VARIABLES.get(name, DEFAULT_REQUIRED) - check.used)
    if missing:
        check.problems.append(f"{name}: does not show {', '.join(missing)}")
    return check


def invoice_templates_check() -> list[TemplateCheck]:
    """Every configured invoice template (`BILLING_EMAIL_TEMPLATES`), checked at Mailgun."""
    from .emails import invoice_email_templates, invoice_email_variable_names

    sent = invoice_email_variable_names()
    names = sorted(set(invoice_email_templates().values()))
    return [mailgun_template_check(name=name, sent=sent) for name in names]
