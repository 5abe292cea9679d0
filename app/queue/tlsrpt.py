"""TLS results of delivery attempts, the raw material of SMTP TLS reports (RFC 8460).

One :class:`TLSResult` describes the TLS outcome of one MX host tried in one
delivery attempt, under the policy that applied to it:

* ``tlsa`` when DANE applied (RFC 7672; the policy domain is the TLSA base domain),
* else ``sts`` when an MTA-STS policy in mode enforce or testing applied (the
  policy domain is the recipient domain),
* else ``no-policy-found``.

Counts are per session: one success or one failure. Failure details carry the
result types of RFC 8460 4.3. Aggregating results into daily reports and sending
them is the job of the queue/reports code; this module is only the data.
"""

import enum
from dataclasses import dataclass, field, replace


class PolicyType(enum.StrEnum):
    """RFC 8460 4.4 policy-type."""

    STS = "sts"
    TLSA = "tlsa"
    NO_POLICY_FOUND = "no-policy-found"


class ResultType(enum.StrEnum):
    """RFC 8460 4.3 result types."""

    # 4.3.1 negotiation failures
    STARTTLS_NOT_SUPPORTED = "starttls-not-supported"
    CERTIFICATE_HOST_MISMATCH = "certificate-host-mismatch"
    CERTIFICATE_EXPIRED = "certificate-expired"
    CERTIFICATE_NOT_TRUSTED = "certificate-not-trusted"
    VALIDATION_FAILURE = "validation-failure"
    # 4.3.2.1 DANE/TLSA
    TLSA_INVALID = "tlsa-invalid"
    DNSSEC_INVALID = "dnssec-invalid"
    DANE_REQUIRED = "dane-required"
    # 4.3.2.2 MTA-STS
    STS_POLICY_FETCH_ERROR = "sts-policy-fetch-error"
    STS_POLICY_INVALID = "sts-policy-invalid"
    STS_WEBPKI_INVALID = "sts-webpki-invalid"


@dataclass(frozen=True, slots=True)
class FailureDetail:
    """RFC 8460 4.4 failure-details (one occurrence)."""

    result_type: ResultType
    receiving_mx_hostname: str = ""
    receiving_ip: str = ""
    sending_mta_ip: str = ""
    failure_reason_code: str = ""
    additional_information: str = ""


@dataclass(frozen=True, slots=True)
class TLSResult:
    """The TLS outcome of one host in one attempt, under one policy."""

    policy_type: PolicyType
    policy_domain: str
    # sts: the policy text lines; tlsa: the TLSA records in presentation form.
    policy_strings: tuple[str, ...] = ()
    mx_host_patterns: tuple[str, ...] = ()  # sts: the policy's mx lines
    host: str = ""  # the MX host this result is about
    success_count: int = 0
    failure_count: int = 0
    failures: tuple[FailureDetail, ...] = field(default=())

    def success(self) -> "TLSResult":
        """This result with one successful session counted."""
        return replace(self, success_count=self.success_count + 1)

    def failure(self, detail: FailureDetail) -> "TLSResult":
        """This result with one failed session and its detail added."""
        return replace(
            self, failure_count=self.failure_count + 1, failures=(*self.failures, detail)
        )

    def note(self, detail: FailureDetail) -> "TLSResult":
        """A detail that is not a failed session (e.g. an unusable TLSA record)."""
        return replace(self, failures=(*self.failures, detail))


__all__ = ["FailureDetail", "PolicyType", "ResultType", "TLSResult"]
