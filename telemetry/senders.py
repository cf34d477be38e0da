"""The worker's outbox senders, counting what they deliver (trlgate_payments_sent_total,
trlgate_mails_sent_total) once each pass has committed it."""

from __future__ import annotations

from activities.mail_sender import MailSender, Outcome
from activities.payments import Delivery, PaymentSender
from domain.mail import MailStatus
from telemetry.metrics import MAILS_SENT, PAYMENTS_SENT


class CountedPaymentSender(PaymentSender):
    async def send_pending(self) -> list[Delivery]:
        sent = await super().send_pending()
        PAYMENTS_SENT.inc(len(sent))
        return sent


class CountedMailSender(MailSender):
    async def send_pending(self) -> list[Outcome]:
        outcomes = await super().send_pending()
        MAILS_SENT.inc(sum(1 for o in outcomes if o.status == MailStatus.SENT))
        return outcomes
