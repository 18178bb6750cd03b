"""Amazon SQS quotas the tool depends on, in one place: the SQS adapter enforces them, the settings
loader and the CLI's flags reject values beyond them.

https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
"""

from __future__ import annotations

#: Entries per SendMessageBatch / DeleteMessageBatch / ChangeMessageVisibilityBatch call.
MAX_BATCH_ENTRIES = 10
#: Messages per ReceiveMessage call.
MAX_RECEIVE_MESSAGES = 10
#: ReceiveMessage ``WaitTimeSeconds`` (long polling).
MAX_LONG_POLL_SECONDS = 20
#: A message's visibility timeout (12 hours).
MAX_VISIBILITY_TIMEOUT_SECONDS = 12 * 3600
#: A message body and its attributes (256 KiB).
MAX_MESSAGE_BYTES = 256 * 1024
#: ``DelaySeconds`` of a message (15 minutes).
MAX_DELAY_SECONDS = 900
#: FIFO queues drop a message whose deduplication id was seen within this window.
FIFO_DEDUP_WINDOW_SECONDS = 5 * 60
