"""The junk filter (issue 29): the tokens of a message, each account's classifier, the
identities a message proves, and the order in which a verdict is reached. Pure logic; the
services read and keep the state through mailcore.ports.junk."""
