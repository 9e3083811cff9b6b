-- The inbound messages each channel instance has announced, by the provider's own message id
-- (a Twilio MessageSid, a WhatsApp wamid, Telegram's chat and message ids). JetStream
-- recognises a redelivered webhook only within its duplicate window (a day); a provider's
-- replay after that (Twilio's, Meta's and Telegram's retries, or an attacker replaying a
-- signed request) is a new delivery. This row makes it the same message: the first receipt's
-- event id and time are used again, and once announced it is announced never again.
CREATE TABLE channel_inbound_message (
    instance_id         text NOT NULL,
    provider_message_id text NOT NULL,
    -- The `communication.MessageReceived` envelope id of the first receipt.
    event_id            uuid NOT NULL,
    received_at         timestamptz NOT NULL,
    -- When its event and items were published and acknowledged; NULL while that has not
    -- happened yet (a crash in between: the redelivery publishes them, under the same ids).
    announced_at        timestamptz,
    PRIMARY KEY (instance_id, provider_message_id)
);
