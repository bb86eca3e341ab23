"""query-lambda: direct-invocation queries of the notification-records read table."""
