"""Logging for domain code: a child of whichever Powertools Logger the process set up."""

from aws_lambda_powertools import Logger

logger = Logger(child=True)
