"""Webhook notifications: which events go where (`rules`), what is sent (`payload`), when it is
retried (`backoff`) and the background delivery (`delivery`)."""
