"""The two Lambda functions of Query Service V3 and their shared record models."""
