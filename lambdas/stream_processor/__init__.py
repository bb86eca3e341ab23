"""stream-processor: keeps notification-records in step with the command-records stream."""
