-- A message can arrive before its conversation: it is stored with `conversation_external_id`
-- and no `conversation_id`, and the batch that later writes the conversation links it. This
-- index finds the messages still waiting, and stays as small as the number of them.
CREATE INDEX message_awaiting_conversation_idx ON message (conversation_external_id)
    WHERE conversation_id IS NULL AND conversation_external_id IS NOT NULL;

-- Messages stored before the ETL linked late conversations: link those whose conversation
-- has arrived since (same instance, same external id).
UPDATE message m SET conversation_id = c.entity_id
FROM source_record s, source_record c
WHERE m.conversation_id IS NULL
  AND m.conversation_external_id IS NOT NULL
  AND s.entity_type = 'message' AND s.entity_id = m.id
  AND c.entity_type = 'conversation' AND c.instance_id = s.instance_id
  AND c.external_id = m.conversation_external_id
  AND NOT c.deleted
  AND c.entity_id <> '00000000-0000-0000-0000-000000000000';
