"""The resident's loop as read models: the messages owed to residents (the outbox), the closures waiting for a
rating (the callback queue), and who gave each rating; all projected from the events, all rebuildable."""
